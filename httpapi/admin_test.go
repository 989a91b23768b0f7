package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

// TestAdminFiguresMatchWhatHappened: every figure of the admin API equals
// what the test did.
func TestAdminFiguresMatchWhatHappened(t *testing.T) {
	e := newAPIEnv(t)
	root := e.user("root", true)
	alice := e.user("alice", false, "user")
	e.user("idle", false, "user")
	admin := e.login("root")
	a := e.login("alice")
	// Three failed logins of alice, one of an unknown user.
	for range 3 {
		if w := e.form("/api/v1/auth/token", url.Values{"username": {"alice"}, "password": {"wrong-Password-1!"}}, nil); w.Code != 400 {
			t.Fatalf("failed login: %d", w.Code)
		}
	}
	if w := e.form("/api/v1/auth/token", url.Values{"username": {"ghost"}, "password": {"wrong-Password-1!"}}, nil); w.Code != 400 {
		t.Fatal(w.Code)
	}
	// One refresh.
	if w := e.form("/api/v1/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}}, nil); w.Code != 200 {
		t.Fatalf("refresh: %d %s", w.Code, w.Body)
	}
	e.flushAudit()
	tok := admin.AccessToken

	// Security events: by user, three failures.
	r := "/api/v1/admin/security/events"
	ev := want(t, e.call("GET", r, r+"?event_type=login.failure&user_id="+alice.ID.String(), tok, nil), 200, "security events of alice")
	if ev["total"] != 3.0 || len(ev["events"].([]any)) != 3 {
		t.Errorf("security events of alice: %v", ev)
	}
	for _, x := range ev["events"].([]any) {
		m := x.(map[string]any)
		if m["user_id"] != alice.ID.String() || m["result"] != "failure" || m["severity"] != "medium" {
			t.Errorf("event %v", m)
		}
	}
	// The same user in the other UUID forms the paths accept finds the
	// same events.
	for _, id := range []string{strings.ToUpper(alice.ID.String()), "urn:uuid:" + alice.ID.String(),
		"{" + alice.ID.String() + "}", strings.ReplaceAll(alice.ID.String(), "-", "")} {
		ev := want(t, e.call("GET", r, r+"?event_type=login.failure&user_id="+url.QueryEscape(id), tok, nil), 200, "security events of alice as "+id)
		if ev["total"] != 3.0 {
			t.Errorf("security events of alice as %s: total %v, want 3", id, ev["total"])
		}
	}
	ev = want(t, e.call("GET", r, r+"?event_type=login.failure", tok, nil), 200, "all failed logins")
	if ev["total"] != 4.0 {
		t.Errorf("failed logins: %v, want 4", ev["total"])
	}
	ev = want(t, e.call("GET", r, r+"?result=failure&per_page=2&page=2", tok, nil), 200, "failures page 2")
	if ev["total"] != 4.0 || len(ev["events"].([]any)) != 2 || ev["pages"] != 2.0 {
		t.Errorf("paged %v", ev)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	ev = want(t, e.call("GET", r, r+"?since="+future, tok, nil), 200, "future window")
	if ev["total"] != 0.0 {
		t.Errorf("future window %v", ev)
	}
	want(t, e.call("GET", r, r+"?hours=0&since=yesterday&per_page=1000", tok, nil), 422, "bad window")

	// Audit activity.
	r = "/api/v1/admin/audit/activity"
	act := want(t, e.call("GET", r, r+"?action=login.", tok, nil), 200, "activity login.")
	// 2 successes (root, alice) + 4 failures.
	if act["total"] != 6.0 {
		t.Errorf("activity login.: %v", act["total"])
	}
	act = want(t, e.call("GET", r, r+"?actor_id="+root.ID.String(), tok, nil), 200, "activity of root")
	if act["total"] != 1.0 {
		t.Errorf("activity of root: %v", act)
	}

	// Usage report.
	r = "/api/v1/admin/reports/usage"
	rep := want(t, e.call("GET", r, r+"?days=7", tok, nil), 200, "usage")
	ua := rep["user_activity"].(map[string]any)
	au := rep["authentication"].(map[string]any)
	ti := rep["tokens_issued"].(map[string]any)
	if ua["new_users"] != 3.0 || ua["active_users"] != 2.0 || au["logins"] != 2.0 || au["failed_logins"] != 4.0 ||
		ti["password"] != 2.0 || ti["refresh_token"] != 1.0 || ti["client_credentials"] != 0.0 || ti["total"] != 3.0 {
		t.Errorf("usage report %v", rep)
	}
	daily := rep["daily"].([]any)
	if len(daily) != 7 {
		t.Fatalf("daily %v", daily)
	}
	today := daily[6].(map[string]any)
	if today["date"] != time.Now().UTC().Format(time.DateOnly) || today["failed_logins"] != 4.0 || today["logins"] != 2.0 {
		t.Errorf("today %v", today)
	}
	want(t, e.call("GET", r, r+"?days=0", tok, nil), 422, "days 0")

	// Dashboard.
	r = "/api/v1/admin/dashboard/stats"
	d := want(t, e.call("GET", r, r, tok, nil), 200, "dashboard")
	us, au2 := d["users"].(map[string]any), d["authentication"].(map[string]any)
	if us["total"] != 3.0 || us["active"] != 3.0 || us["recent_registrations"] != 3.0 || au2["total_logins_today"] != 2.0 ||
		au2["failed_logins_today"] != 4.0 || au2["active_sessions"] != 2.0 || au2["tokens_issued_today"] != 3.0 {
		t.Errorf("dashboard %v", d)
	}
	if rp := d["roles_and_permissions"].(map[string]any); rp["total_roles"] != 3.0 || rp["total_scopes"] != float64(len(permiso.DefaultScopes)) {
		t.Errorf("roles %v", rp)
	}

	// System health: the database with a measured latency.
	r = "/api/v1/admin/system/health"
	h := want(t, e.call("GET", r, r, tok, nil), 200, "system health")
	db := h["components"].(map[string]any)["database"].(map[string]any)
	if h["status"] != "healthy" || db["status"] != "healthy" || db["latency_ms"] == nil {
		t.Errorf("system health %v", h)
	}
	if p := h["process"].(map[string]any); p["goroutines"].(float64) < 1 || p["memory"].(map[string]any)["alloc_bytes"].(float64) <= 0 {
		t.Errorf("process %v", p)
	}

	// Logs: two errors logged, one warning (not kept).
	e.logger.Error("disk on fire", "component", "store", "request_id", "r-1")
	e.logger.Warn("just a warning")
	e.logger.Error("second failure")
	r = "/api/v1/admin/logs/errors"
	lg := want(t, e.call("GET", r, r, tok, nil), 200, "logs")
	logs := lg["logs"].([]any)
	if lg["total"] != 2.0 || len(logs) != 2 || logs[0].(map[string]any)["message"] != "second failure" ||
		logs[1].(map[string]any)["logger"] != "store" || logs[1].(map[string]any)["details"].(map[string]any)["request_id"] != "r-1" {
		t.Errorf("logs %v", lg)
	}
	want(t, e.call("GET", r, r+"?level=LOUD", tok, nil), 422, "bad level")

	// Maintenance: one expired session, one expired refresh token, one
	// used action token, one expired lock, one old audit event.
	now := time.Now().UTC()
	x, err := e.db.CreateSession(e.ctx, permiso.Session{UserID: alice.ID, IPAddress: "192.0.2.1", CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	_ = x
	if _, err := e.db.CreateActionToken(e.ctx, permiso.ActionToken{UserID: alice.ID, Purpose: permiso.PurposePasswordReset,
		TokenHash: permiso.HashToken("old"), CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.UpdateUser(e.ctx, alice.ID, func(u *permiso.User) error {
		past := now.Add(-time.Minute)
		u.LockedUntil, u.FailedLoginAttempts = &past, 5
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.AppendAuditEvents(e.ctx, []permiso.AuditEvent{{OccurredAt: now.Add(-100 * 24 * time.Hour), ActorType: "system", Action: "test.old", Result: "success"}}); err != nil {
		t.Fatal(err)
	}
	r = "/api/v1/admin/maintenance/cleanup"
	mc := want(t, e.call("POST", r, r, tok, nil), 200, "cleanup")
	counts := map[string]float64{}
	for _, o := range mc["operations"].([]any) {
		m := o.(map[string]any)
		counts[m["operation"].(string)] = m["items_removed"].(float64)
	}
	wantCounts := map[string]float64{"cleanup_expired_sessions": 1, "cleanup_expired_action_tokens": 1, "unlock_expired_accounts": 1, "prune_audit_events": 1, "cleanup_expired_refresh_tokens": 0}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("cleanup %s = %v, want %v (%v)", k, counts[k], v, mc)
		}
	}

	// Scopes: a plain user is refused everywhere.
	for _, p := range []string{"/api/v1/admin/dashboard/stats", "/api/v1/admin/system/health", "/api/v1/admin/security/events",
		"/api/v1/admin/audit/activity", "/api/v1/admin/reports/usage", "/api/v1/admin/logs/errors"} {
		want(t, e.call("GET", p, p, a.AccessToken, nil), http.StatusForbidden, "plain user on "+p)
	}
}
