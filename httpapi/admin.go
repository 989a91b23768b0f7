package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/reports"
)

// Admin API (docs/api.md, "Admin"). Every figure comes from the
// data: users and sessions from the store, logins, failures and tokens
// from the audit log, process figures from the Go runtime. Scopes (each
// also granted by is_superuser or role admin):
//
//	GET  /admin/dashboard/stats      admin:users
//	GET  /admin/system/health        admin:system
//	GET  /admin/security/events      admin:security
//	GET  /admin/audit/activity       admin:audit
//	GET  /admin/reports/usage        admin:users
//	POST /admin/maintenance/cleanup  admin:system
//	GET  /admin/logs/errors          admin:logs

// Admin scopes (docs/api.md, "Admin").
const (
	scopeAdminUsers    = "admin:users"
	scopeAdminSystem   = "admin:system"
	scopeAdminSecurity = "admin:security"
	scopeAdminAudit    = "admin:audit"
	scopeAdminLogs     = "admin:logs"
	scopeAdminClients  = "admin:clients"
)

const actionMaintenanceCleanup = "maintenance.cleanup"

// securityActions are the audit actions shown as security events: logins
// and their failures, lockouts, client authentication failures, refresh
// reuse, revocations, ended sessions, password changes and changes of
// second factors (docs/mfa.md).
var securityActions = []string{
	"login.", "lockout.", "account.", "rate_limit.", "password.",
	oauth2.ActionClientAuthFailure, oauth2.ActionTokenReuseDetected, oauth2.ActionTokenRevoke,
	oauth2.ActionRevokeAll, oauth2.ActionRevokeOthers, oauth2.ActionLogout,
	identity.ActionSessionRevoke, identity.ActionSessionRevokeAll, identity.ActionClientRotateSecret, identity.ActionClientDelete,
	"user.lock", "user.unlock", "user.roles", "client.rate_limited", "mfa.",
}

// severity ranks a security event.
func severity(e permiso.AuditEvent) string {
	switch {
	case e.Action == oauth2.ActionTokenReuseDetected:
		return "critical"
	case strings.Contains(e.Action, "lock") && !strings.Contains(e.Action, "unlock"):
		return "high"
	case e.Result == "failure":
		return "medium"
	}
	return "low"
}

// auditEventView is one audit event in a response.
type auditEventView struct {
	ID         string         `json:"id"`
	EventType  string         `json:"event_type"`
	Action     string         `json:"action"`
	Result     string         `json:"result"`
	Severity   string         `json:"severity"`
	ActorType  string         `json:"actor_type"`
	ActorID    *string        `json:"actor_id"`
	UserID     *string        `json:"user_id"`
	ClientID   *string        `json:"client_id"`
	TargetType *string        `json:"resource_type"`
	TargetID   *string        `json:"resource_id"`
	IPAddress  *string        `json:"ip_address"`
	UserAgent  *string        `json:"user_agent"`
	RequestID  *string        `json:"request_id"`
	Details    map[string]any `json:"details"`
	Timestamp  string         `json:"timestamp"`
}

func auditView(e permiso.AuditEvent) auditEventView {
	v := auditEventView{
		ID: e.ID.String(), EventType: e.Action, Action: e.Action, Result: e.Result, Severity: severity(e),
		ActorType: e.ActorType, ActorID: e.ActorID, TargetType: e.TargetType, TargetID: e.TargetID,
		IPAddress: e.IPAddress, UserAgent: e.UserAgent, RequestID: e.RequestID, Details: e.Details,
		Timestamp: timestamp(e.OccurredAt),
	}
	if v.Details == nil {
		v.Details = map[string]any{}
	}
	switch {
	case e.ActorType == "user":
		v.UserID = e.ActorID
	case e.TargetType != nil && *e.TargetType == "user":
		v.UserID = e.TargetID
	}
	switch {
	case e.ActorType == "client":
		v.ClientID = e.ActorID
	case e.TargetType != nil && (*e.TargetType == "client" || *e.TargetType == "service_client"):
		v.ClientID = e.TargetID
	}
	return v
}

// readWindow reads the time window of an audit query: since and until
// (RFC 3339) when given, else the last hours hours (1..maxHours, default
// def; def 0 means no lower bound).
func (s *server) readWindow(q url.Values, def, maxHours int, errs *queryErrs) (since, until *time.Time) {
	since, until = readTime(q, "since", errs), readTime(q, "until", errs)
	hours := readInt(q, "hours", def, 1, maxHours, errs)
	if since == nil && hours > 0 {
		t := s.now().UTC().Add(-time.Duration(hours) * time.Hour)
		since = &t
	}
	if since != nil && until != nil && !since.Before(*until) {
		errs.add("until", "must be after since")
	}
	return since, until
}

// readAuditFilter reads the filters shared by security events and audit
// activity: event_type or action (exact, or a prefix ending in '.'),
// user_id (events by or about the user), actor_id, result, the window and
// the page.
func (s *server) readAuditFilter(r *http.Request, defHours int) (permiso.AuditFilter, paging, error) {
	q := r.URL.Query()
	var errs queryErrs
	pg := readPaging(q, 50, 100, &errs)
	f := permiso.AuditFilter{Offset: pg.offset(), Limit: pg.PerPage}
	f.Action = readString(q, "event_type", 100, &errs)
	if a := readString(q, "action", 100, &errs); a != "" {
		f.Action = a
	}
	f.Subject = canonicalID(readString(q, "user_id", 255, &errs))
	f.ActorID = canonicalID(readString(q, "actor_id", 255, &errs))
	switch res := q.Get("result"); res {
	case "", "success", "failure":
		f.Result = res
	default:
		errs.add("result", "must be success or failure")
	}
	f.Since, f.Until = s.readWindow(q, defHours, 24*366, &errs)
	return f, pg, errs.err()
}

// canonicalID writes an id that is a UUID in any form the paths accept
// (upper case, braces, urn:uuid:, no dashes) as the audit log stores it, so
// that a filter finds the same events as the canonical form; anything
// else (a service client's client_id) is matched as it is.
func canonicalID(s string) string {
	if id, err := uuid.Parse(s); err == nil {
		return id.String()
	}
	return s
}

// handleSecurityEvents answers GET /admin/security/events: the security
// events of the audit log, newest first (default window 24 hours).
func (s *server) handleSecurityEvents() http.Handler {
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		f, pg, err := s.readAuditFilter(r, 24)
		if err != nil {
			return err
		}
		f.Actions = securityActions
		return s.answerAuditPage(w, r, f, pg, "events")
	})
}

// handleAuditActivity answers GET /admin/audit/activity: every audit
// event, newest first, filtered (no default window).
func (s *server) handleAuditActivity() http.Handler {
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		f, pg, err := s.readAuditFilter(r, 0)
		if err != nil {
			return err
		}
		return s.answerAuditPage(w, r, f, pg, "activities")
	})
}

// answerAuditPage answers the page pg of the audit events f selects: the
// events under key, with total, page, per_page and pages.
func (s *server) answerAuditPage(w http.ResponseWriter, r *http.Request, f permiso.AuditFilter, pg paging, key string) error {
	events, total, err := s.store.ListAuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	return answerPage(w, key, pg, events, total, auditView)
}

// handleDashboard answers GET /admin/dashboard/stats
// (reports.Service.Dashboard).
func (s *server) handleDashboard() http.Handler {
	return report(s, (*reports.Service).Dashboard)
}

// handleSystemHealth answers GET /admin/system/health: the database and
// Redis (cache) checks with their measured latency, and the process:
// memory, goroutines, uptime. Always 200; "status" is "healthy" or
// "degraded".
func (s *server) handleSystemHealth() http.Handler {
	type memory struct {
		AllocBytes     uint64 `json:"alloc_bytes"`
		HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
		SysBytes       uint64 `json:"sys_bytes"`
		NumGC          uint32 `json:"num_gc"`
	}
	type process struct {
		UptimeSeconds int64  `json:"uptime_seconds"`
		StartedAt     string `json:"started_at"`
		Goroutines    int    `json:"goroutines"`
		NumCPU        int    `json:"num_cpu"`
		GoVersion     string `json:"go_version"`
		Memory        memory `json:"memory"`
	}
	type response struct {
		Status     string                    `json:"status"`
		Timestamp  string                    `json:"timestamp"`
		Version    string                    `json:"version"`
		Components map[string]map[string]any `json:"components"`
		Process    process                   `json:"process"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		results, healthy := runChecks(r.Context(), s.logger, s.checks, s.opts.HealthCheckTimeout)
		for _, c := range results {
			if l, ok := c["latency_ms"]; ok {
				c["response_time_ms"] = l
			}
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		now := s.now()
		resp := response{Status: "healthy", Timestamp: timestamp(now), Version: s.opts.Version, Components: results,
			Process: process{UptimeSeconds: int64(now.Sub(s.started) / time.Second), StartedAt: timestamp(s.started),
				Goroutines: runtime.NumGoroutine(), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
				Memory: memory{AllocBytes: m.Alloc, HeapInuseBytes: m.HeapInuse, SysBytes: m.Sys, NumGC: m.NumGC}}}
		if !healthy {
			resp.Status = "degraded"
		}
		w.Header().Set("Cache-Control", "no-store")
		return answer(w, http.StatusOK, resp)
	})
}

// handleUsageReport answers GET /admin/reports/usage?days=N (1-365,
// default 30; reports.Service.Usage).
func (s *server) handleUsageReport() http.Handler {
	return s.reportsHandler(func(w http.ResponseWriter, r *http.Request) error {
		var errs queryErrs
		days := readInt(r.URL.Query(), "days", 30, 1, reports.MaxUsageDays, &errs)
		if err := errs.err(); err != nil {
			return err
		}
		u, err := s.reports.Usage(r.Context(), days)
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, u)
	})
}

// errNoReports answers the report routes of a server without a reports
// service (Deps.Reports nil).
var errNoReports = permiso.Errorf(permiso.EUNAVAILABLE, "Reports are not configured")

// reportsHandler serves a route of the reports: 503 when the server has
// no reports service (Deps.Reports nil), so the handlers can rely on
// s.reports.
func (s *server) reportsHandler(h handlerFunc) http.Handler {
	return needs(s.reports != nil, errNoReports, h)
}

// report serves a report that takes no input: one call of the reports
// service, 200 with its figures.
func report[T any](s *server, compute func(*reports.Service, context.Context) (T, error)) http.Handler {
	return s.reportsHandler(func(w http.ResponseWriter, r *http.Request) error {
		v, err := compute(s.reports, r.Context())
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, v)
	})
}

// handleMaintenanceCleanup answers POST /admin/maintenance/cleanup: it
// deletes expired refresh tokens, expired sessions, expired or used
// action tokens (password reset, email verification) and expired
// authorization codes (docs/oidc.md), clears expired
// account locks and prunes audit events older than AUDIT_RETENTION_DAYS,
// and reports each count. Lockout counters in Redis expire by themselves.
func (s *server) handleMaintenanceCleanup() http.Handler {
	type operation struct {
		Operation string `json:"operation"`
		Items     int    `json:"items_removed"`
	}
	type response struct {
		Timestamp  string      `json:"timestamp"`
		Operations []operation `json:"operations"`
		Total      int         `json:"total_items"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		now := s.now()
		steps := []struct {
			name string
			run  func() (int, error)
		}{
			{"cleanup_expired_refresh_tokens", func() (int, error) { return s.store.DeleteExpiredRefreshTokens(ctx, now) }},
			{"cleanup_expired_sessions", func() (int, error) { return s.store.DeleteExpiredSessions(ctx, now) }},
			{"cleanup_expired_action_tokens", func() (int, error) { return s.store.DeleteExpiredActionTokens(ctx, now) }},
			{"cleanup_expired_authorization_codes", func() (int, error) { return s.store.DeleteExpiredAuthCodes(ctx, now) }},
			{"cleanup_expired_mfa_tokens", func() (int, error) { return s.store.DeleteExpiredMFATokens(ctx, now) }},
			{"unlock_expired_accounts", func() (int, error) { return s.store.ClearExpiredLocks(ctx, now) }},
			{"prune_audit_events", func() (int, error) { return audit.Prune(ctx, s.store, s.opts.AuditRetention, now) }},
		}
		resp := response{Timestamp: timestamp(now), Operations: make([]operation, 0, len(steps))}
		details := map[string]any{}
		for _, st := range steps {
			n, err := st.run()
			if err != nil {
				return err
			}
			resp.Operations = append(resp.Operations, operation{st.name, n})
			resp.Total += n
			details[st.name] = n
		}
		s.record(r, actionMaintenanceCleanup, "success", auditTarget{}, details)
		return answer(w, http.StatusOK, resp)
	})
}

// logLevels maps the level names of the logs query to slog levels.
var logLevels = map[string]int{"DEBUG": -4, "INFO": 0, "WARNING": 4, "WARN": 4, "ERROR": 8, "CRITICAL": 12}

// handleErrorLogs answers GET /admin/logs/errors: the most recent
// error-level log records of this process (a bounded in-memory ring),
// newest first. Query: level (ERROR by default, or CRITICAL; ALL for
// every kept record), hours (1-168, default 24), page, per_page.
func (s *server) handleErrorLogs() http.Handler {
	type entry struct {
		Timestamp string            `json:"timestamp"`
		Level     string            `json:"level"`
		Logger    string            `json:"logger"`
		Message   string            `json:"message"`
		Details   map[string]string `json:"details"`
	}
	type response struct {
		Logs            []entry  `json:"logs"`
		Total           int      `json:"total"`
		Page            int      `json:"page"`
		PerPage         int      `json:"per_page"`
		Pages           int      `json:"pages"`
		Capacity        int      `json:"capacity"`
		AvailableLevels []string `json:"available_levels"`
	}
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		var errs queryErrs
		pg := readPaging(q, 50, 100, &errs)
		hours := readInt(q, "hours", 24, 1, 168, &errs)
		level := strings.ToUpper(strings.TrimSpace(q.Get("level")))
		minLevel := 8
		switch l, ok := logLevels[level]; {
		case level == "":
		case level == "ALL":
			minLevel = -1 << 30
		case ok:
			minLevel = l
		default:
			errs.add("level", "must be one of ERROR, CRITICAL, WARNING, INFO, DEBUG, ALL")
		}
		if err := errs.err(); err != nil {
			return err
		}
		since := s.now().Add(-time.Duration(hours) * time.Hour)
		var all []entry
		capacity := 0
		if s.errlog != nil {
			capacity = s.errlog.Capacity()
			for _, e := range s.errlog.Entries() {
				if int(e.Level) < minLevel || e.Time.Before(since) {
					continue
				}
				name := "ERROR"
				if e.Level >= 12 {
					name = "CRITICAL"
				} else if e.Level < 8 {
					name = e.Level.String()
				}
				all = append(all, entry{Timestamp: timestamp(e.Time), Level: name, Logger: e.Logger, Message: e.Message, Details: e.Attrs})
			}
		}
		resp := response{Logs: []entry{}, Total: len(all), Page: pg.Page, PerPage: pg.PerPage, Pages: pg.pages(len(all)),
			Capacity: capacity, AvailableLevels: []string{"ERROR", "CRITICAL", "ALL"}}
		if off := pg.offset(); off < len(all) {
			resp.Logs = all[off:min(off+pg.PerPage, len(all))]
		}
		return answer(w, http.StatusOK, resp)
	})
}
