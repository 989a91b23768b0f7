package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/permiso/permiso"
)

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

// timeFormat is the fixed-width UTC text form of every stored time, so that
// text order is time order (docs/data-model.md).
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// ts formats t for storage.
func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

// tsPtr formats an optional time for storage (nil stays NULL).
func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// parseTS parses a stored time; the result is always in time.UTC.
func parseTS(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: bad stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// timeCol scans a NOT NULL time column.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case string:
		t, err := parseTS(v)
		*c.t = t
		return err
	case []byte:
		t, err := parseTS(string(v))
		*c.t = t
		return err
	case time.Time:
		*c.t = v.UTC()
		return nil
	case nil:
		return errors.New("sqlite: NULL in a NOT NULL time column")
	}
	return fmt.Errorf("sqlite: cannot scan %T into a time", src)
}

// nullTimeCol scans a nullable time column.
type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(src any) error {
	if src == nil {
		*c.t = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(src); err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// now returns the current time as the stores keep it.
func now() time.Time { return time.Now().UTC() }

// orNow returns t, or the current time when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t.UTC()
}

// newID returns a new, time-ordered UUID (version 7).
func newID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// idsJSON encodes ids as a JSON array for "IN (SELECT value FROM
// json_each(?))", which takes any number of ids as one argument.
func idsJSON(ids []uuid.UUID) string {
	ss := make([]string, len(ids))
	for i, id := range ids {
		ss[i] = id.String()
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

// page appends LIMIT/OFFSET to a query; limit 0 means no limit.
func page(query string, args []any, offset, limit int) (string, []any) {
	if limit <= 0 && offset <= 0 {
		return query, args
	}
	if limit <= 0 {
		limit = -1
	}
	return query + " LIMIT ? OFFSET ?", append(args, limit, max(offset, 0))
}

// sqliteCode returns the extended result code of a driver error, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKey reports a foreign-key violation: SQLITE_CONSTRAINT_FOREIGNKEY
// for an insert or update, or, for ON DELETE RESTRICT, the
// SQLITE_CONSTRAINT_TRIGGER that SQLite raises with a "FOREIGN KEY" message.
func isForeignKey(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return true
	case sqlite3.SQLITE_CONSTRAINT_TRIGGER:
		return strings.Contains(err.Error(), "FOREIGN KEY")
	}
	return false
}

// errMap says how to translate the driver errors of one operation.
type errMap struct {
	op       string // what was being done, for internal errors ("get user")
	notFound string // caller-safe message for sql.ErrNoRows
	exists   string // caller-safe message for a unique violation
	fkCode   permiso.Code
	fk       string // caller-safe message for a foreign-key violation
}

// wrap maps err to a permiso sentinel (wrapping the driver error, so that
// errors.Is works and logs keep the cause) or, for anything unexpected, to a
// plain error that the HTTP layer reports as an internal error.
func (m errMap) wrap(err error) error {
	if err == nil {
		return nil
	}
	var pe *permiso.Error
	if errors.As(err, &pe) {
		return err
	}
	switch {
	case errors.Is(err, sql.ErrNoRows) && m.notFound != "":
		return permiso.Wrap(permiso.ENOTFOUND, m.notFound, err)
	case isUnique(err) && m.exists != "":
		return permiso.Wrap(permiso.EEXISTS, m.exists, err)
	case isForeignKey(err) && m.fk != "":
		code := m.fkCode
		if code == "" {
			code = permiso.ENOTFOUND
		}
		return permiso.Wrap(code, m.fk, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("sqlite: %s: %w", m.op, err)
	case sqliteCode(err)&0xff == sqlite3.SQLITE_BUSY:
		return permiso.Wrap(permiso.EUNAVAILABLE, "The database is busy", err)
	}
	return fmt.Errorf("sqlite: %s: %w", m.op, err)
}
