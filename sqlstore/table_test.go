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
	}
	check := func(name string, tb table, cols, args, updateArgs, dest int) {
		t.Helper()
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
	d := plain{}
	c := Clients.zero()
	check("service_clients", Clients, len(Clients.Cols), len(Clients.Args(d, c)), len(Clients.UpdateArgs(d, c)), len(Clients.Dest(d, c)))
	u := Users.zero()
	check("users", Users, len(Users.Cols), len(Users.Args(d, u)), len(Users.UpdateArgs(d, u)), len(Users.Dest(d, u)))
	r := Roles.zero()
	check("roles", Roles, len(Roles.Cols), len(Roles.Args(d, r)), len(Roles.UpdateArgs(d, r)), len(Roles.Dest(d, r)))
	s := Scopes.zero()
	check("scopes", Scopes, len(Scopes.Cols), len(Scopes.Args(d, s)), len(Scopes.UpdateArgs(d, s)), len(Scopes.Dest(d, s)))
	ss := Sessions.zero()
	check("user_sessions", Sessions, len(Sessions.Cols), len(Sessions.Args(d, ss)), len(Sessions.UpdateArgs(d, ss)), len(Sessions.Dest(d, ss)))
	rt := RefreshTokens.zero()
	check("refresh_tokens", RefreshTokens, len(RefreshTokens.Cols), len(RefreshTokens.Args(d, rt)), len(RefreshTokens.UpdateArgs(d, rt)), len(RefreshTokens.Dest(d, rt)))
	at := ActionTokens.zero()
	check("action_tokens", ActionTokens, len(ActionTokens.Cols), len(ActionTokens.Args(d, at)), len(ActionTokens.UpdateArgs(d, at)), len(ActionTokens.Dest(d, at)))
	ae := AuditEvents.zero()
	check("audit_events", AuditEvents, len(AuditEvents.Cols), len(AuditEvents.Args(d, ae)), len(AuditEvents.UpdateArgs(d, ae)), len(AuditEvents.Dest(d, ae)))
	k := SigningKeys.zero()
	check("signing_keys", SigningKeys, len(SigningKeys.Cols), len(SigningKeys.Args(d, k)), len(SigningKeys.UpdateArgs(d, k)), len(SigningKeys.Dest(d, k)))
}

// zero returns a pointer to a new zero value of the table's type.
func (t *Table[T]) zero() *T { return new(T) }
