package httpapi

import (
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/oauth2"
)

// Admin API (SPEC §5.2, ORIGINAL-API §2.6). Every figure comes from the
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

// Admin scopes (ORIGINAL-API §2.6).
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
// reuse, revocations, ended sessions and password changes.
var securityActions = []string{
	"login.", "lockout.", "account.", "rate_limit.", "password.",
	oauth2.ActionClientAuthFailure, oauth2.ActionTokenReuseDetected, oauth2.ActionTokenRevoke,
	oauth2.ActionRevokeAll, oauth2.ActionRevokeOthers, oauth2.ActionLogout,
	actionSessionRevoke, actionSessionRevokeAll, identity.ActionClientRotateSecret, identity.ActionClientDelete,
	"user.lock", "user.unlock", "user.roles", "client.rate_limited",
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
	f.Subject = readString(q, "user_id", 255, &errs)
	f.ActorID = readString(q, "actor_id", 255, &errs)
	switch res := q.Get("result"); res {
	case "", "success", "failure":
		f.Result = res
	default:
		errs.add("result", "must be success or failure")
	}
	f.Since, f.Until = s.readWindow(q, defHours, 24*366, &errs)
	return f, pg, errs.err()
}

// handleSecurityEvents answers GET /admin/security/events: the security
// events of the audit log, newest first (default window 24 hours).
func (s *server) handleSecurityEvents() http.Handler {
	type response struct {
		Events  []auditEventView `json:"events"`
		Total   int              `json:"total"`
		Page    int              `json:"page"`
		PerPage int              `json:"per_page"`
		Pages   int              `json:"pages"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, pg, err := s.readAuditFilter(r, 24)
		if err != nil {
			writeError(w, r, err)
			return
		}
		f.Actions = securityActions
		events, total, err := s.store.ListAuditEvents(r.Context(), f)
		if err != nil {
			writeError(w, r, err)
			return
		}
		resp := response{Events: make([]auditEventView, 0, len(events)), Total: total, Page: pg.Page, PerPage: pg.PerPage, Pages: pg.pages(total)}
		for _, e := range events {
			resp.Events = append(resp.Events, auditView(e))
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// handleAuditActivity answers GET /admin/audit/activity: every audit
// event, newest first, filtered (no default window).
func (s *server) handleAuditActivity() http.Handler {
	type response struct {
		Activities []auditEventView `json:"activities"`
		Total      int              `json:"total"`
		Page       int              `json:"page"`
		PerPage    int              `json:"per_page"`
		Pages      int              `json:"pages"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, pg, err := s.readAuditFilter(r, 0)
		if err != nil {
			writeError(w, r, err)
			return
		}
		events, total, err := s.store.ListAuditEvents(r.Context(), f)
		if err != nil {
			writeError(w, r, err)
			return
		}
		resp := response{Activities: make([]auditEventView, 0, len(events)), Total: total, Page: pg.Page, PerPage: pg.PerPage, Pages: pg.pages(total)}
		for _, e := range events {
			resp.Activities = append(resp.Activities, auditView(e))
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// countAudit counts the events matching f.
func (s *server) countAudit(r *http.Request, f permiso.AuditFilter) (int, error) {
	rows, err := s.store.CountAuditEvents(r.Context(), f, permiso.AuditGrouping{})
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	return rows[0].Count, nil
}

// handleDashboard answers GET /admin/dashboard/stats.
func (s *server) handleDashboard() http.Handler {
	type users struct {
		Total               int `json:"total"`
		Active              int `json:"active"`
		Verified            int `json:"verified"`
		Locked              int `json:"locked"`
		RecentRegistrations int `json:"recent_registrations"`
	}
	type roles struct {
		TotalRoles  int `json:"total_roles"`
		TotalScopes int `json:"total_scopes"`
	}
	type clients struct {
		Total  int `json:"total"`
		Active int `json:"active"`
	}
	type authn struct {
		TotalLoginsToday  int `json:"total_logins_today"`
		FailedLoginsToday int `json:"failed_logins_today"`
		TokensIssuedToday int `json:"tokens_issued_today"`
		ActiveSessions    int `json:"active_sessions"`
	}
	type system struct {
		UptimeSeconds int64   `json:"uptime_seconds"`
		UptimeHours   float64 `json:"uptime_hours"`
		Database      string  `json:"database"`
		Goroutines    int     `json:"goroutines"`
		MemoryAllocMB float64 `json:"memory_alloc_mb"`
	}
	type response struct {
		Users    users   `json:"users"`
		Roles    roles   `json:"roles_and_permissions"`
		Clients  clients `json:"service_clients"`
		Auth     authn   `json:"authentication"`
		System   system  `json:"system"`
		Computed string  `json:"generated_at"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		now := s.now()
		today := startOfDay(now)
		var resp response
		fail := func(err error) bool {
			if err != nil {
				writeError(w, r, err)
				return true
			}
			return false
		}
		us, err := s.store.UserStats(ctx, now, now.Add(-7*24*time.Hour))
		if fail(err) {
			return
		}
		resp.Users = users{us.Total, us.Active, us.Verified, us.Locked, us.CreatedSince}
		_, nr, err := s.store.ListRoles(ctx, permiso.RoleFilter{Limit: 1})
		if fail(err) {
			return
		}
		_, ns, err := s.store.ListScopes(ctx, permiso.ScopeFilter{Limit: 1})
		if fail(err) {
			return
		}
		resp.Roles = roles{nr, ns}
		yes := true
		_, nc, err := s.store.ListServiceClients(ctx, permiso.ClientFilter{Limit: 1})
		if fail(err) {
			return
		}
		_, na, err := s.store.ListServiceClients(ctx, permiso.ClientFilter{Limit: 1, IsActive: &yes})
		if fail(err) {
			return
		}
		resp.Clients = clients{nc, na}
		counts, err := s.store.CountAuditEvents(ctx, permiso.AuditFilter{Since: &today,
			Actions: []string{oauth2.ActionLoginSuccess, oauth2.ActionLoginFailure, oauth2.ActionTokenRefresh, oauth2.ActionTokenIssue}},
			permiso.AuditGrouping{Action: true})
		if fail(err) {
			return
		}
		for _, c := range counts {
			switch c.Action {
			case oauth2.ActionLoginSuccess:
				resp.Auth.TotalLoginsToday = c.Count
				resp.Auth.TokensIssuedToday += c.Count
			case oauth2.ActionLoginFailure:
				resp.Auth.FailedLoginsToday = c.Count
			default:
				resp.Auth.TokensIssuedToday += c.Count
			}
		}
		st, err := s.store.SessionStats(ctx, now, today)
		if fail(err) {
			return
		}
		resp.Auth.ActiveSessions = st.Active
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		up := now.Sub(s.started)
		resp.System = system{UptimeSeconds: int64(up / time.Second), UptimeHours: round2(up.Hours()),
			Database: s.store.Backend(), Goroutines: runtime.NumGoroutine(), MemoryAllocMB: round2(float64(m.Alloc) / (1 << 20))}
		resp.Computed = timestamp(now)
		writeJSON(w, http.StatusOK, resp)
	})
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		writeJSON(w, http.StatusOK, resp)
	})
}

// handleUsageReport answers GET /admin/reports/usage?days=N (1-365,
// default 30): new and active users, logins and failures per day, and
// tokens issued per grant, over the last N UTC days (today included).
func (s *server) handleUsageReport() http.Handler {
	type grants struct {
		Password          int `json:"password"`
		RefreshToken      int `json:"refresh_token"`
		ClientCredentials int `json:"client_credentials"`
		Total             int `json:"total"`
	}
	type day struct {
		Date         string `json:"date"`
		Logins       int    `json:"logins"`
		FailedLogins int    `json:"failed_logins"`
		TokensIssued grants `json:"tokens_issued"`
	}
	type period struct {
		StartDate string `json:"start_date"`
		EndDate   string `json:"end_date"`
		Days      int    `json:"days"`
	}
	type userActivity struct {
		NewUsers    int `json:"new_users"`
		ActiveUsers int `json:"active_users"`
	}
	type authn struct {
		Logins       int `json:"logins"`
		FailedLogins int `json:"failed_logins"`
	}
	type response struct {
		Period       period       `json:"report_period"`
		UserActivity userActivity `json:"user_activity"`
		Auth         authn        `json:"authentication"`
		TokensIssued grants       `json:"tokens_issued"`
		Daily        []day        `json:"daily"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var errs queryErrs
		days := readInt(r.URL.Query(), "days", 30, 1, 365, &errs)
		if err := errs.err(); err != nil {
			writeError(w, r, err)
			return
		}
		ctx := r.Context()
		now := s.now().UTC()
		start := startOfDay(now).AddDate(0, 0, -(days - 1))
		resp := response{Period: period{StartDate: timestamp(start), EndDate: timestamp(now), Days: days}}
		us, err := s.store.UserStats(ctx, now, start)
		if err != nil {
			writeError(w, r, err)
			return
		}
		resp.UserActivity.NewUsers = us.CreatedSince
		active, err := s.store.CountAuditActors(ctx, permiso.AuditFilter{Since: &start,
			Actions: []string{oauth2.ActionLoginSuccess, oauth2.ActionTokenRefresh}})
		if err != nil {
			writeError(w, r, err)
			return
		}
		resp.UserActivity.ActiveUsers = active
		rows, err := s.store.CountAuditEvents(ctx, permiso.AuditFilter{Since: &start,
			Actions: []string{oauth2.ActionLoginSuccess, oauth2.ActionLoginFailure, oauth2.ActionTokenRefresh, oauth2.ActionTokenIssue}},
			permiso.AuditGrouping{Day: true, Action: true})
		if err != nil {
			writeError(w, r, err)
			return
		}
		resp.Daily = make([]day, days)
		for i := range resp.Daily {
			resp.Daily[i].Date = start.AddDate(0, 0, i).Format(time.DateOnly)
		}
		for _, c := range rows {
			i := int(c.Day.Sub(start) / (24 * time.Hour))
			if i < 0 || i >= days {
				continue
			}
			d := &resp.Daily[i]
			switch c.Action {
			case oauth2.ActionLoginSuccess:
				d.Logins += c.Count
				d.TokensIssued.Password += c.Count
			case oauth2.ActionLoginFailure:
				d.FailedLogins += c.Count
			case oauth2.ActionTokenRefresh:
				d.TokensIssued.RefreshToken += c.Count
			case oauth2.ActionTokenIssue:
				d.TokensIssued.ClientCredentials += c.Count
			}
		}
		for i := range resp.Daily {
			d := &resp.Daily[i]
			d.TokensIssued.Total = d.TokensIssued.Password + d.TokensIssued.RefreshToken + d.TokensIssued.ClientCredentials
			resp.Auth.Logins += d.Logins
			resp.Auth.FailedLogins += d.FailedLogins
			resp.TokensIssued.Password += d.TokensIssued.Password
			resp.TokensIssued.RefreshToken += d.TokensIssued.RefreshToken
			resp.TokensIssued.ClientCredentials += d.TokensIssued.ClientCredentials
			resp.TokensIssued.Total += d.TokensIssued.Total
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// handleMaintenanceCleanup answers POST /admin/maintenance/cleanup: it
// deletes expired refresh tokens, expired sessions, expired or used
// action tokens (password reset, email verification), clears expired
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		now := s.now()
		steps := []struct {
			name string
			run  func() (int, error)
		}{
			{"cleanup_expired_refresh_tokens", func() (int, error) { return s.store.DeleteExpiredRefreshTokens(ctx, now) }},
			{"cleanup_expired_sessions", func() (int, error) { return s.store.DeleteExpiredSessions(ctx, now) }},
			{"cleanup_expired_action_tokens", func() (int, error) { return s.store.DeleteExpiredActionTokens(ctx, now) }},
			{"unlock_expired_accounts", func() (int, error) { return s.store.ClearExpiredLocks(ctx, now) }},
			{"prune_audit_events", func() (int, error) { return audit.Prune(ctx, s.store, s.opts.AuditRetention, now) }},
		}
		resp := response{Timestamp: timestamp(now), Operations: make([]operation, 0, len(steps))}
		details := map[string]any{}
		for _, st := range steps {
			n, err := st.run()
			if err != nil {
				writeError(w, r, err)
				return
			}
			resp.Operations = append(resp.Operations, operation{st.name, n})
			resp.Total += n
			details[st.name] = n
		}
		s.record(r, actionMaintenanceCleanup, "success", auditTarget{}, details)
		writeJSON(w, http.StatusOK, resp)
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			writeError(w, r, err)
			return
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
		writeJSON(w, http.StatusOK, resp)
	})
}
