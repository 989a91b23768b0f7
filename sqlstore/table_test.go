package sqlstore

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// plain is a Dialect for tests that need only Time and the scans.
type plain struct{ Dialect }

func (plain) Time(t time.Time) any           { return t }
func (plain) ScanTime(p *time.Time) any      { return p }
func (plain) ScanNullTime(p **time.Time) any { return p }
func (plain) InIDs(col string) string        { return col + " IN (?)" }
func (plain) IDs(ids []uuid.UUID) any        { return ids }

// TestTables: every table's statements and arguments agree (one
// placeholder per argument), and every column's field has an encoding
// (Args panics on a field type without one).
func TestTables(t *testing.T) {
	type table interface {
		Insert() string
		Update() string
		Names() string
		counts() (name string, cols, args, updateArgs, dest int)
	}
	for _, tb := range []table{Clients, Users, Roles, Scopes, Sessions, RefreshTokens, ActionTokens, AuditEvents, SigningKeys} {
		name, cols, args, updateArgs, dest := tb.counts()
		if n := strings.Count(tb.Insert(), "?"); n != cols || args != cols {
			t.Errorf("%s: INSERT has %d placeholders and %d arguments for %d columns", name, n, args, cols)
		}
		if n := strings.Count(tb.Update(), "?"); n != updateArgs {
			t.Errorf("%s: UPDATE has %d placeholders and %d arguments", name, n, updateArgs)
		}
		if dest != cols || len(strings.Split(tb.Names(), ", ")) != cols {
			t.Errorf("%s: %d scan destinations, names %q, for %d columns", name, dest, tb.Names(), cols)
		}
	}
}

// counts returns the table's name, and the numbers of its columns, of the
// arguments of its insert and its update, and of its scan destinations,
// for a zero value of its type.
func (t *Table[T]) counts() (name string, cols, args, updateArgs, dest int) {
	d, v := plain{}, new(T)
	return t.Name, len(t.Cols), len(t.Args(d, v)), len(t.UpdateArgs(d, v)), len(t.Dest(d, v))
}
