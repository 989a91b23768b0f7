package sqlite

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// timeFormat is the fixed-width UTC text form of every stored time, so that
// text order is time order (docs/data-model.md).
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// ts formats t for storage.
func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

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
