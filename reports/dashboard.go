package reports

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// Dashboard is the answer of GET /admin/dashboard/stats.
type Dashboard struct {
	Users   DashboardUsers   `json:"users"`
	Roles   DashboardRoles   `json:"roles_and_permissions"`
	Clients DashboardClients `json:"service_clients"`
	Auth    DashboardAuth    `json:"authentication"`
	System  DashboardSystem  `json:"system"`
	// Computed is when the figures were computed (UTC).
	Computed time.Time `json:"generated_at"`
}

// DashboardUsers counts users; recent registrations are those of the
// last 7 days.
type DashboardUsers struct {
	Total               int `json:"total"`
	Active              int `json:"active"`
	Verified            int `json:"verified"`
	Locked              int `json:"locked"`
	RecentRegistrations int `json:"recent_registrations"`
}

// DashboardRoles counts roles and scopes.
type DashboardRoles struct {
	TotalRoles  int `json:"total_roles"`
	TotalScopes int `json:"total_scopes"`
}

// DashboardClients counts service clients.
type DashboardClients struct {
	Total  int `json:"total"`
	Active int `json:"active"`
}

// DashboardAuth is today's (UTC) authentication activity, from the audit
// log, and the sessions active now. Tokens issued counts logins,
// refreshes and client-credentials tokens.
type DashboardAuth struct {
	TotalLoginsToday  int `json:"total_logins_today"`
	FailedLoginsToday int `json:"failed_logins_today"`
	TokensIssuedToday int `json:"tokens_issued_today"`
	ActiveSessions    int `json:"active_sessions"`
}

// DashboardSystem describes this process.
type DashboardSystem struct {
	UptimeSeconds int64   `json:"uptime_seconds"`
	UptimeHours   float64 `json:"uptime_hours"`
	Database      string  `json:"database"`
	Goroutines    int     `json:"goroutines"`
	MemoryAllocMB float64 `json:"memory_alloc_mb"`
}

// tokenActions are the audit actions of logins and issued tokens.
var tokenActions = []string{oauth2.ActionLoginSuccess, oauth2.ActionLoginFailure, oauth2.ActionTokenRefresh, oauth2.ActionTokenIssue}

// Dashboard computes the dashboard: six independent queries, run
// concurrently.
func (s *Service) Dashboard(ctx context.Context) (Dashboard, error) {
	now := s.now()
	today := startOfDay(now)
	var d Dashboard
	var counts []permiso.AuditCount
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		us, err := s.store.UserStats(ctx, now, now.Add(-7*24*time.Hour))
		d.Users = DashboardUsers{us.Total, us.Active, us.Verified, us.Locked, us.CreatedSince}
		return err
	})
	g.Go(func() (err error) {
		_, d.Roles.TotalRoles, err = s.store.ListRoles(ctx, permiso.RoleFilter{Limit: 1})
		return err
	})
	g.Go(func() (err error) {
		_, d.Roles.TotalScopes, err = s.store.ListScopes(ctx, permiso.ScopeFilter{Limit: 1})
		return err
	})
	g.Go(func() (err error) {
		d.Clients.Total, err = s.countClients(ctx, permiso.ClientFilter{})
		return err
	})
	g.Go(func() (err error) {
		yes := true
		d.Clients.Active, err = s.countClients(ctx, permiso.ClientFilter{IsActive: &yes})
		return err
	})
	g.Go(func() (err error) {
		counts, err = s.store.CountAuditEvents(ctx, permiso.AuditFilter{Since: &today, Actions: tokenActions},
			permiso.AuditGrouping{Action: true})
		return err
	})
	g.Go(func() error {
		st, err := s.store.SessionStats(ctx, now, today)
		d.Auth.ActiveSessions = st.Active
		return err
	})
	if err := g.Wait(); err != nil {
		return Dashboard{}, err
	}
	for _, c := range counts {
		switch c.Action {
		case oauth2.ActionLoginSuccess:
			d.Auth.TotalLoginsToday = c.Count
			d.Auth.TokensIssuedToday += c.Count
		case oauth2.ActionLoginFailure:
			d.Auth.FailedLoginsToday = c.Count
		default:
			d.Auth.TokensIssuedToday += c.Count
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	up := now.Sub(s.started)
	d.System = DashboardSystem{UptimeSeconds: int64(up / time.Second), UptimeHours: round2(up.Hours()),
		Database: s.store.Backend(), Goroutines: runtime.NumGoroutine(), MemoryAllocMB: round2(float64(m.Alloc) / (1 << 20))}
	d.Computed = now.UTC()
	return d, nil
}

// ClientActivity is one client's token requests today.
type ClientActivity struct {
	ClientID string `json:"client_id"`
	Requests int    `json:"requests"`
}

// ClientStats is the answer of GET /service-clients/stats/overview:
// counts of clients, and today's (UTC) token requests of clients from the
// audit log (client-credentials tokens issued), with the ten most active
// clients (most requests first, then by client_id).
type ClientStats struct {
	TotalClients       int              `json:"total_clients"`
	ActiveClients      int              `json:"active_clients"`
	TrustedClients     int              `json:"trusted_clients"`
	TotalRequestsToday int              `json:"total_requests_today"`
	MostActiveClients  []ClientActivity `json:"most_active_clients"`
}

// ClientStats computes the service-clients overview: four independent
// queries, run concurrently.
func (s *Service) ClientStats(ctx context.Context) (ClientStats, error) {
	today := startOfDay(s.now())
	yes := true
	var st ClientStats
	var rows []permiso.AuditCount
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		st.TotalClients, err = s.countClients(ctx, permiso.ClientFilter{})
		return err
	})
	g.Go(func() (err error) {
		st.ActiveClients, err = s.countClients(ctx, permiso.ClientFilter{IsActive: &yes})
		return err
	})
	g.Go(func() (err error) {
		st.TrustedClients, err = s.countClients(ctx, permiso.ClientFilter{IsTrusted: &yes})
		return err
	})
	g.Go(func() (err error) {
		rows, err = s.store.CountAuditEvents(ctx, permiso.AuditFilter{Action: oauth2.ActionTokenIssue, Since: &today},
			permiso.AuditGrouping{Actor: true})
		return err
	})
	if err := g.Wait(); err != nil {
		return ClientStats{}, err
	}
	st.MostActiveClients = []ClientActivity{}
	for _, row := range rows {
		if row.ActorType != "client" {
			continue
		}
		st.TotalRequestsToday += row.Count
		st.MostActiveClients = append(st.MostActiveClients, ClientActivity{ClientID: row.ActorID, Requests: row.Count})
	}
	slices.SortFunc(st.MostActiveClients, func(a, b ClientActivity) int {
		if a.Requests != b.Requests {
			return b.Requests - a.Requests
		}
		return strings.Compare(a.ClientID, b.ClientID)
	})
	if len(st.MostActiveClients) > 10 {
		st.MostActiveClients = st.MostActiveClients[:10]
	}
	return st, nil
}

// SessionStats is the answer of GET /sessions/stats: counts over all
// sessions now; each session counts once, as revoked, else expired, else
// active; "today" starts at UTC midnight.
type SessionStats struct {
	ActiveSessions       int `json:"active_sessions"`
	SessionsCreatedToday int `json:"sessions_created_today"`
	ExpiredSessions      int `json:"expired_sessions"`
	RevokedSessions      int `json:"revoked_sessions"`
	TotalSessions        int `json:"total_sessions"`
}

// SessionStats computes the session figures (one query).
func (s *Service) SessionStats(ctx context.Context) (SessionStats, error) {
	now := s.now()
	st, err := s.store.SessionStats(ctx, now, startOfDay(now))
	if err != nil {
		return SessionStats{}, err
	}
	return SessionStats{ActiveSessions: st.Active, SessionsCreatedToday: st.CreatedSince,
		ExpiredSessions: st.Expired, RevokedSessions: st.Revoked, TotalSessions: st.Active + st.Expired + st.Revoked}, nil
}
