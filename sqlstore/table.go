package sqlstore

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Col is one column of an entity's table: its name and the field of the
// domain struct it holds. The type of the field decides how it is written
// and read: times through the Dialect's time hooks, everything else as is.
// Arg and Dest, when set, override that (a column stored in another form
// than the field, such as a list joined into text).
type Col[T any] struct {
	Name  string
	Field func(*T) any
	// Fixed columns are written by inserts only (the key, the creation
	// time): updates leave them.
	Fixed bool
	Arg   func(d Dialect, v *T) any
	Dest  func(d Dialect, v *T) any
}

// Fields returns one Col per name, each holding the field of T that has
// the column's name once underscores and case are set aside (user_id:
// UserID, ip_address: IPAddress, allowed_ips: AllowedIPs); the names in
// fixed are Fixed. A column stored in another form than its field (Arg
// and Dest) is written out as a Col and appended. A name that matches no
// field of T, or more than one, panics: the tables are package variables,
// so the mistake stops the program and every test at once.
func Fields[T any](fixed []string, names ...string) []Col[T] {
	typ := reflect.TypeFor[T]()
	cols := make([]Col[T], len(names))
	for i, name := range names {
		idx := -1
		want := strings.ReplaceAll(name, "_", "")
		for j := range typ.NumField() {
			if strings.EqualFold(typ.Field(j).Name, want) {
				if idx >= 0 {
					panic("sqlstore: column " + name + " matches more than one field of " + typ.String())
				}
				idx = j
			}
		}
		if idx < 0 {
			panic("sqlstore: column " + name + " matches no field of " + typ.String())
		}
		cols[i] = Col[T]{Name: name, Fixed: slices.Contains(fixed, name),
			Field: func(v *T) any { return reflect.ValueOf(v).Elem().Field(idx).Addr().Interface() }}
	}
	return cols
}

// Table describes an entity's table once; the select lists, scans,
// inserts and updates of the Store come from it, so a field is added to
// storage by adding one Col (or one name to its Fields).
type Table[T any] struct {
	Name  string
	Alias string
	Cols  []Col[T]

	list      string // "a.col1, a.col2, ..."
	names     string // "col1, col2, ..."
	insert    string
	row       string // "(?, ?, ...)": one row of VALUES
	update    string
	timeIdx   []int // columns whose field is a time.Time
	nTimeIdx  []int // columns whose field is a *time.Time
	updateCol []int
	updatedAt int // the updated_at column (a time.Time), -1 when there is none
}

// NewTable builds the statements of a table from its columns. The first
// column is the key that updates select the row by.
func NewTable[T any](name, alias string, cols ...Col[T]) *Table[T] {
	t := &Table[T]{Name: name, Alias: alias, Cols: cols, updatedAt: -1}
	var zero T
	names := make([]string, len(cols))
	qualified := make([]string, len(cols))
	marks := make([]string, len(cols))
	var sets []string
	for i, c := range cols {
		names[i] = c.Name
		qualified[i] = alias + "." + c.Name
		marks[i] = "?"
		if !c.Fixed {
			sets = append(sets, c.Name+" = ?")
			t.updateCol = append(t.updateCol, i)
		}
		switch c.Field(&zero).(type) {
		case *time.Time:
			t.timeIdx = append(t.timeIdx, i)
			if c.Name == "updated_at" {
				t.updatedAt = i
			}
		case **time.Time:
			t.nTimeIdx = append(t.nTimeIdx, i)
		}
	}
	t.list = strings.Join(qualified, ", ")
	t.names = strings.Join(names, ", ")
	t.row = "(" + strings.Join(marks, ", ") + ")"
	t.insert = "INSERT INTO " + name + " (" + strings.Join(names, ", ") + ") VALUES " + t.row
	t.update = "UPDATE " + name + " SET " + strings.Join(sets, ", ") + " WHERE " + cols[0].Name + " = ?"
	return t
}

// List is the select list, qualified by the table's alias.
func (t *Table[T]) List() string { return t.list }

// Names is the unqualified column list, for RETURNING and INSERT ... SELECT.
func (t *Table[T]) Names() string { return t.names }

// From is "name AS alias".
func (t *Table[T]) From() string { return t.Name + " AS " + t.Alias }

// Select is "SELECT <list> FROM <name> AS <alias>".
func (t *Table[T]) Select() string { return "SELECT " + t.list + " FROM " + t.From() }

// Insert is the INSERT of every column, with Args as its arguments.
func (t *Table[T]) Insert() string { return t.insert }

// InsertRows is the INSERT of every column for n rows (n >= 1) in one
// statement, with the Args of each row one after the other as its
// arguments.
func (t *Table[T]) InsertRows(n int) string {
	return t.insert + strings.Repeat(", "+t.row, n-1)
}

// Update is the UPDATE of every column but the fixed ones, by key, with
// UpdateArgs as its arguments.
func (t *Table[T]) Update() string { return t.update }

// Args returns the arguments of Insert, in column order.
func (t *Table[T]) Args(d Dialect, v *T) []any {
	args := make([]any, len(t.Cols))
	for i := range t.Cols {
		args[i] = t.arg(d, i, v)
	}
	return args
}

// UpdateArgs returns the arguments of Update: the columns that are not
// fixed, then the key.
func (t *Table[T]) UpdateArgs(d Dialect, v *T) []any {
	args := make([]any, 0, len(t.updateCol)+1)
	for _, i := range t.updateCol {
		args = append(args, t.arg(d, i, v))
	}
	return append(args, t.arg(d, 0, v))
}

// Dest returns the scan destinations of List, in column order; extra are
// appended (for computed columns a query adds after the list).
func (t *Table[T]) Dest(d Dialect, v *T, extra ...any) []any {
	dest := make([]any, len(t.Cols), len(t.Cols)+len(extra))
	for i, c := range t.Cols {
		if c.Dest != nil {
			dest[i] = c.Dest(d, v)
			continue
		}
		switch p := c.Field(v).(type) {
		case *time.Time:
			dest[i] = d.ScanTime(p)
		case **time.Time:
			dest[i] = d.ScanNullTime(p)
		default:
			dest[i] = p
		}
	}
	return append(dest, extra...)
}

// Scan reads one row of List (and extra) into a new value.
func (t *Table[T]) Scan(d Dialect, r Row, extra ...any) (T, error) {
	var v T
	if err := r.Scan(t.Dest(d, &v, extra...)...); err != nil {
		return v, err
	}
	t.Normalize(&v)
	return v, nil
}

// Normalize puts every time of v in UTC, as the stores return them.
func (t *Table[T]) Normalize(v *T) {
	for _, i := range t.timeIdx {
		p := t.Cols[i].Field(v).(*time.Time)
		*p = p.UTC()
	}
	for _, i := range t.nTimeIdx {
		p := t.Cols[i].Field(v).(**time.Time)
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
}

func (t *Table[T]) arg(d Dialect, i int, v *T) any {
	c := t.Cols[i]
	if c.Arg != nil {
		return c.Arg(d, v)
	}
	switch p := c.Field(v).(type) {
	case *time.Time:
		return d.Time(*p)
	case **time.Time:
		if *p == nil {
			return nil
		}
		return d.Time(**p)
	case *string:
		return *p
	case **string:
		return orNull(*p)
	case *uuid.UUID:
		return *p
	case **uuid.UUID:
		return orNull(*p)
	case *bool:
		return *p
	case *int:
		return *p
	case **int:
		return orNull(*p)
	case *int64:
		return *p
	case *[]byte:
		return *p
	}
	panic("sqlstore: column " + c.Name + " of " + t.Name + " has a field type without an encoding; give it Arg and Dest")
}

// orNull is the value p points to, or NULL (nil) when p is nil: the
// argument of a nullable column.
func orNull[V any](p *V) any {
	if p == nil {
		return nil
	}
	return *p
}
