package reports_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/reports"
	"github.com/permiso/permiso/sqlite"
)

// fixture is a real SQLite store holding known data, and a clock at noon
// UTC of a fixed day.
type fixture struct {
	ctx   context.Context
	db    *sqlite.DB
	now   time.Time
	today time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	db := testdb.SQLite(t)
	today := time.Date(2031, 5, 20, 0, 0, 0, 0, time.UTC)
	return &fixture{ctx: ctx, db: db, now: today.Add(12 * time.Hour), today: today}
}

func (f *fixture) user(t *testing.T, name string, created time.Time, active bool) permiso.User {
	t.Helper()
	u, err := f.db.CreateUser(f.ctx, permiso.User{Username: name, Email: name + "@example.com", PasswordHash: "x",
		IsActive: active, PasswordChangedAt: created, CreatedAt: created, UpdatedAt: created}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) client(t *testing.T, id string, active, trusted bool) {
	t.Helper()
	if _, err := f.db.CreateServiceClient(f.ctx, permiso.ServiceClient{ClientID: id, SecretHash: "h", Name: id,
		ClientType: "confidential", IsActive: active, IsTrusted: trusted, CreatedAt: f.now, UpdatedAt: f.now}, nil); err != nil {
		t.Fatal(err)
	}
}

// events appends n events of action by the actor at the time.
func (f *fixture) events(t *testing.T, n int, action, actorType, actorID string, at time.Time) {
	t.Helper()
	evs := make([]permiso.AuditEvent, 0, n)
	for range n {
		e := permiso.AuditEvent{OccurredAt: at, ActorType: actorType, Action: action, Result: "success"}
		if actorID != "" {
			e.ActorID = &actorID
		}
		evs = append(evs, e)
	}
	if err := f.db.AppendAuditEvents(f.ctx, evs); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) session(t *testing.T, u permiso.User, created, expires time.Time, revoked bool) {
	t.Helper()
	s := permiso.Session{ID: uuid.New(), UserID: u.ID, IPAddress: "192.0.2.1", CreatedAt: created, LastActivity: created, ExpiresAt: expires}
	if revoked {
		s.RevokedAt = &created
	}
	if _, err := f.db.CreateSession(f.ctx, s); err != nil {
		t.Fatal(err)
	}
}

// TestReportsFigures: every figure of every report equals the data the
// test wrote: users by age, clients by state, sessions by state, and the
// audit log by action, actor and day, around the edges of the periods.
func TestReportsFigures(t *testing.T) {
	f := newFixture(t)
	alice := f.user(t, "alice", f.today.Add(-30*24*time.Hour), true)
	bob := f.user(t, "bob", f.today.Add(-2*24*time.Hour), true)
	f.user(t, "carol", f.today.Add(time.Hour), false)
	f.client(t, "billing", true, true)
	f.client(t, "reports", true, false)
	f.client(t, "old", false, false)
	f.session(t, alice, f.today.Add(time.Hour), f.now.Add(time.Hour), false)      // active, today
	f.session(t, bob, f.today.Add(-time.Hour), f.now.Add(time.Hour), false)       // active, yesterday
	f.session(t, bob, f.today.Add(-48*time.Hour), f.today.Add(-time.Hour), false) // expired
	f.session(t, alice, f.today.Add(2*time.Hour), f.now.Add(time.Hour), true)     // revoked, today

	yesterday := f.today.Add(-12 * time.Hour)
	f.events(t, 2, oauth2.ActionLoginSuccess, "user", alice.ID.String(), f.today.Add(time.Hour))
	f.events(t, 1, oauth2.ActionLoginSuccess, "user", bob.ID.String(), yesterday)
	f.events(t, 3, oauth2.ActionLoginFailure, "anonymous", "", f.today.Add(2*time.Hour))
	f.events(t, 1, oauth2.ActionTokenRefresh, "user", bob.ID.String(), f.today.Add(3*time.Hour))
	f.events(t, 4, oauth2.ActionTokenIssue, "client", "billing", f.today.Add(4*time.Hour))
	f.events(t, 6, oauth2.ActionTokenIssue, "client", "reports", f.today.Add(4*time.Hour))
	f.events(t, 5, oauth2.ActionTokenIssue, "client", "reports", yesterday)
	f.events(t, 1, oauth2.ActionLoginSuccess, "user", alice.ID.String(), f.today.Add(-40*24*time.Hour)) // outside every period

	started := f.now.Add(-90 * time.Minute)
	svc := reports.New(reports.Deps{Store: f.db, Started: started, Now: func() time.Time { return f.now }})

	d, err := svc.Dashboard(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantUsers := reports.DashboardUsers{Total: 3, Active: 2, RecentRegistrations: 2}
	if d.Users != wantUsers || d.Clients != (reports.DashboardClients{Total: 3, Active: 2}) ||
		d.Roles.TotalRoles != 3 || d.Roles.TotalScopes != len(permiso.DefaultScopes) {
		t.Errorf("dashboard counts %+v", d)
	}
	if want := (reports.DashboardAuth{TotalLoginsToday: 2, FailedLoginsToday: 3, TokensIssuedToday: 2 + 1 + 10, ActiveSessions: 2}); d.Auth != want {
		t.Errorf("dashboard authentication %+v, want %+v", d.Auth, want)
	}
	if d.System.UptimeSeconds != 90*60 || d.System.UptimeHours != 1.5 || d.System.Database != f.db.Backend() ||
		d.System.Goroutines < 1 || !d.Computed.Equal(f.now) {
		t.Errorf("dashboard system %+v at %v", d.System, d.Computed)
	}

	u, err := svc.Usage(f.ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if u.Period.Days != 2 || !u.Period.StartDate.Equal(f.today.AddDate(0, 0, -1)) || !u.Period.EndDate.Equal(f.now) ||
		u.UserActivity != (reports.UserActivity{NewUsers: 1, ActiveUsers: 2}) || u.Auth != (reports.UsageAuth{Logins: 3, FailedLogins: 3}) ||
		u.TokensIssued != (reports.TokensByGrant{Password: 3, RefreshToken: 1, ClientCredentials: 15, Total: 19}) {
		t.Errorf("usage %+v", u)
	}
	wantDays := []reports.UsageDay{
		{Date: "2031-05-19", Logins: 1, TokensIssued: reports.TokensByGrant{Password: 1, ClientCredentials: 5, Total: 6}},
		{Date: "2031-05-20", Logins: 2, FailedLogins: 3, TokensIssued: reports.TokensByGrant{Password: 2, RefreshToken: 1, ClientCredentials: 10, Total: 13}},
	}
	if fmt.Sprint(u.Daily) != fmt.Sprint(wantDays) {
		t.Errorf("daily %+v, want %+v", u.Daily, wantDays)
	}
	for _, days := range []int{0, reports.MaxUsageDays + 1} {
		if _, err := svc.Usage(f.ctx, days); permiso.ErrorCode(err) != permiso.EINVALID {
			t.Errorf("Usage(%d): %v, want a validation error", days, err)
		}
	}

	cs, err := svc.ClientStats(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTop := []reports.ClientActivity{{ClientID: "reports", Requests: 6}, {ClientID: "billing", Requests: 4}}
	if cs.TotalClients != 3 || cs.ActiveClients != 2 || cs.TrustedClients != 1 || cs.TotalRequestsToday != 10 ||
		fmt.Sprint(cs.MostActiveClients) != fmt.Sprint(wantTop) {
		t.Errorf("client stats %+v", cs)
	}

	us, err := svc.UserStats(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// alice was created 30 days before today: not within the last 30
	// days of now (noon).
	if want := (reports.UserStats{TotalUsers: 3, ActiveUsers: 2, RecentRegistrations: 2}); us != want {
		t.Errorf("user stats %+v, want %+v", us, want)
	}

	ss, err := svc.SessionStats(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (reports.SessionStats{ActiveSessions: 2, SessionsCreatedToday: 2, ExpiredSessions: 1, RevokedSessions: 1, TotalSessions: 4}); ss != want {
		t.Errorf("session stats %+v, want %+v", ss, want)
	}
}

// failing is the real store with one query failing.
type failing struct {
	*sqlite.DB
	err error
}

func (f failing) CountAuditEvents(context.Context, permiso.AuditFilter, permiso.AuditGrouping) ([]permiso.AuditCount, error) {
	return nil, f.err
}

// TestReportsFailWhole: when one of a report's concurrent queries fails,
// the report is that error, never a partial answer.
func TestReportsFailWhole(t *testing.T) {
	f := newFixture(t)
	down := permiso.Errorf(permiso.EUNAVAILABLE, "database unavailable")
	svc := reports.New(reports.Deps{Store: failing{DB: f.db, err: down}})
	_, err := svc.Dashboard(f.ctx)
	if !errors.Is(err, down) {
		t.Errorf("Dashboard: %v, want %v", err, down)
	}
	if _, err := svc.Usage(f.ctx, 7); !errors.Is(err, down) {
		t.Errorf("Usage: %v, want %v", err, down)
	}
	if _, err := svc.ClientStats(f.ctx); !errors.Is(err, down) {
		t.Errorf("ClientStats: %v, want %v", err, down)
	}
}

// TestRoleStats: the roles held by most users and the scopes held by
// fewest roles, ties by name, five of each.
func TestRoleStats(t *testing.T) {
	f := newFixture(t)
	sc, err := f.db.CreateScope(f.ctx, permiso.Scope{Name: "read:reports"})
	if err != nil {
		t.Fatal(err)
	}
	reporters, err := f.db.CreateRole(f.ctx, permiso.Role{Name: "reporters"}, []uuid.UUID{sc.ID})
	if err != nil {
		t.Fatal(err)
	}
	auditors, err := f.db.CreateRole(f.ctx, permiso.Role{Name: "auditors"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, roles := range [][]uuid.UUID{{reporters.ID, auditors.ID}, {reporters.ID}} {
		u := f.user(t, fmt.Sprintf("user%d", i), f.now, true)
		if err := f.db.SetUserRoles(f.ctx, u.ID, roles); err != nil {
			t.Fatal(err)
		}
	}
	unused, err := f.db.CreateScope(f.ctx, permiso.Scope{Name: "write:reports"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := reports.New(reports.Deps{Store: f.db}).RoleStats(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRoles := []reports.NameCount{{"reporters", 2}, {"auditors", 1}, {"admin", 0}, {"service", 0}, {"user", 0}}
	if st.TotalRoles != 5 || st.TotalScopes != len(permiso.DefaultScopes)+2 || fmt.Sprint(st.MostCommonRoles) != fmt.Sprint(wantRoles) {
		t.Errorf("role stats %+v", st)
	}
	if len(st.LeastUsedScopes) != 5 || st.LeastUsedScopes[0] != (reports.NameCount{Name: unused.Name, Count: 0}) {
		t.Errorf("least used scopes %+v", st.LeastUsedScopes)
	}
}
