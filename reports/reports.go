// Package reports computes the figures of the admin API from the data
// itself (docs/api.md; every figure is real, nothing is hard-coded): the
// dashboard (GET /admin/dashboard/stats), the usage report
// (GET /admin/reports/usage), and the overviews of users
// (GET /users/stats/overview), roles (GET /roles/stats), service clients
// (GET /service-clients/stats/overview) and sessions (GET /sessions/stats). Users and sessions come from the store; logins,
// failures and issued tokens from the audit log; process figures from the
// Go runtime.
//
// One method per report. The queries of a report that do not depend on
// one another run concurrently; the first failure ends the report and is
// returned. The values are shaped as the HTTP API answers them (their
// JSON form is the response body).
package reports

import (
	"context"
	"time"

	"github.com/permiso/permiso"
)

// Store is the part of permiso.Store the reports read.
type Store interface {
	UserStats(ctx context.Context, now, createdSince time.Time) (permiso.UserStats, error)
	ListRoles(ctx context.Context, f permiso.RoleFilter) ([]permiso.Role, int, error)
	ListScopes(ctx context.Context, f permiso.ScopeFilter) ([]permiso.Scope, int, error)
	ListServiceClients(ctx context.Context, f permiso.ClientFilter) ([]permiso.ServiceClient, int, error)
	SessionStats(ctx context.Context, now, createdSince time.Time) (permiso.SessionStats, error)
	CountAuditEvents(ctx context.Context, f permiso.AuditFilter, g permiso.AuditGrouping) ([]permiso.AuditCount, error)
	CountAuditActors(ctx context.Context, f permiso.AuditFilter) (int, error)
	// Backend names the database ("sqlite", "postgresql").
	Backend() string
}

// Deps are what the reports read.
type Deps struct {
	Store Store
	// Started is when the process started (uptime); zero means when New
	// was called.
	Started time.Time
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service computes the reports. It is safe for concurrent use.
type Service struct {
	store   Store
	started time.Time
	now     func() time.Time
}

// New returns a Service.
func New(deps Deps) *Service {
	s := &Service{store: deps.Store, started: deps.Started, now: deps.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.started.IsZero() {
		s.started = s.now()
	}
	return s
}

// startOfDay is midnight UTC of t's day: "today" in every report.
func startOfDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// count returns the number of clients matching f (one row read).
func (s *Service) countClients(ctx context.Context, f permiso.ClientFilter) (int, error) {
	f.Limit = 1
	_, n, err := s.store.ListServiceClients(ctx, f)
	return n, err
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
