package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

type sink struct{ events []permiso.AuditEvent }

func (s *sink) Record(_ context.Context, e permiso.AuditEvent) { s.events = append(s.events, e) }

// scrapeHas scrapes m and fails t for each of want that the output
// (what) lacks.
func scrapeHas(t *testing.T, m *Metrics, what string, want ...string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	out := string(b)
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func TestCountsFromAuditEventsAndHTTP(t *testing.T) {
	m := New()
	next := &sink{}
	a := m.Auditor(next)
	ctx := context.Background()
	for _, e := range []permiso.AuditEvent{
		{Action: "login.success", Result: "success"},
		{Action: "login.failure", Result: "failure"},
		{Action: "login.failure", Result: "failure"},
		{Action: "login.locked", Result: "failure"},
		{Action: "token.refresh", Result: "success"},
		{Action: "token.issue", Result: "success", Details: map[string]any{"grant_type": "client_credentials"}},
		{Action: "token.reuse_detected", Result: "failure"},
	} {
		a.Record(ctx, e)
	}
	if len(next.events) != 7 {
		t.Fatalf("wrapped auditor got %d events, want 7", len(next.events))
	}
	m.ObserveHTTP("POST /api/v1/auth/token", "POST", 200, 3*time.Millisecond)
	m.ObserveHTTP("", "GET", 404, time.Millisecond)
	m.RateLimited("login")
	m.RegisterPool("database", func() PoolStats { return PoolStats{Open: 3, InUse: 1, Idle: 2, Max: 30} })
	m.RegisterCache(func() CacheStats {
		return CacheStats{Hits: 40, Misses: 2, Invalidations: 5, Resyncs: 1, Users: 7, Clients: 3}
	})

	scrapeHas(t, m, "metrics output",
		`permiso_logins_total{result="failure"} 2`,
		`permiso_logins_total{result="success"} 1`,
		`permiso_lockouts_total 1`,
		`permiso_tokens_issued_total{grant="password"} 1`,
		`permiso_tokens_issued_total{grant="refresh_token"} 1`,
		`permiso_tokens_issued_total{grant="client_credentials"} 1`,
		`permiso_refresh_token_reuse_detected_total 1`,
		`permiso_rate_limited_total{limit="login"} 1`,
		`permiso_http_requests_total{method="POST",route="POST /api/v1/auth/token",status="200"} 1`,
		`permiso_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`permiso_database_pool_connections{state="max"} 30`,
		`permiso_cache_lookups_total{result="hit"} 40`,
		`permiso_cache_lookups_total{result="miss"} 2`,
		`permiso_cache_events_total{event="invalidation"} 5`,
		`permiso_cache_events_total{event="resync"} 1`,
		`permiso_cache_entries{kind="users"} 7`,
		`permiso_cache_entries{kind="clients"} 3`,
		`go_goroutines`,
	)
}

// TestObserveHTTPCachedChildren: repeated requests of one route, method
// and status (whose counter and histogram ObserveHTTP keeps after the
// first) add up in the same series, and another status, method or route,
// and unmatched requests, get series of their own.
func TestObserveHTTPCachedChildren(t *testing.T) {
	m := New()
	for range 3 {
		m.ObserveHTTP("GET /api/v1/users/me", "GET", 200, 2*time.Millisecond)
	}
	m.ObserveHTTP("GET /api/v1/users/me", "GET", 401, time.Millisecond)
	m.ObserveHTTP("GET /api/v1/users/me", "HEAD", 200, time.Millisecond)
	m.ObserveHTTP("POST /api/v1/auth/introspect", "POST", 200, time.Millisecond)
	m.ObserveHTTP("", "BREW", 404, time.Millisecond)
	m.ObserveHTTP("", "BREW", 404, time.Millisecond)
	scrapeHas(t, m, "metrics output",
		`permiso_http_requests_total{method="GET",route="GET /api/v1/users/me",status="200"} 3`,
		`permiso_http_requests_total{method="GET",route="GET /api/v1/users/me",status="401"} 1`,
		`permiso_http_requests_total{method="HEAD",route="GET /api/v1/users/me",status="200"} 1`,
		`permiso_http_requests_total{method="POST",route="POST /api/v1/auth/introspect",status="200"} 1`,
		`permiso_http_requests_total{method="BREW",route="unmatched",status="404"} 2`,
		`permiso_http_request_duration_seconds_count{method="GET",route="GET /api/v1/users/me"} 4`,
		`permiso_http_request_duration_seconds_sum{method="GET",route="GET /api/v1/users/me"} 0.007`,
		`permiso_http_request_duration_seconds_count{method="HEAD",route="GET /api/v1/users/me"} 1`,
		`permiso_http_request_duration_seconds_count{method="BREW",route="unmatched"} 2`,
	)
}

// TestCountCachedChildren: repeated audit events add up in the series of
// their first (whose children count keeps), raw label values that clean
// to the same text share it, a token event without a grant counts as
// "unknown", and past maxCachedChildren distinct values events are still
// counted, uncached.
func TestCountCachedChildren(t *testing.T) {
	m := New()
	a := m.Auditor(nil)
	ctx := context.Background()
	issue := func(grant any) permiso.AuditEvent {
		return permiso.AuditEvent{Action: "token.issue", Result: "success", Details: map[string]any{"grant_type": grant}}
	}
	for range 3 {
		a.Record(ctx, issue("client_credentials"))
	}
	a.Record(ctx, issue("client\x00_credentials"))
	a.Record(ctx, issue(nil))
	a.Record(ctx, issue(""))
	a.Record(ctx, permiso.AuditEvent{Action: "token.issue", Result: "fail\xffure"})
	for i := range maxCachedChildren + 10 {
		a.Record(ctx, permiso.AuditEvent{Action: fmt.Sprintf("test.action%d", i%(maxCachedChildren+5)), Result: "success"})
	}
	scrapeHas(t, m, "metrics output",
		`permiso_tokens_issued_total{grant="client_credentials"} 4`,
		`permiso_tokens_issued_total{grant="unknown"} 3`,
		`permiso_audit_events_total{action="token.issue",result="success"} 6`,
		"permiso_audit_events_total{action=\"token.issue\",result=\"fail\uFFFDure\"} 1",
		`permiso_audit_events_total{action="test.action0",result="success"} 2`,
		fmt.Sprintf(`permiso_audit_events_total{action="test.action%d",result="success"} 1`, maxCachedChildren+4),
	)
	if n := m.auditChildren.n.Load(); n != maxCachedChildren {
		t.Errorf("audit children cached: %d, want the bound %d", n, maxCachedChildren)
	}
}

// TestAuditWriterMetrics: the audit writer's counters exist at 0 from the
// start (an alert on drops needs no absent()), and its observer and queue
// gauges move them.
func TestAuditWriterMetrics(t *testing.T) {
	m := New()
	scrapeHas(t, m, "fresh metrics",
		"permiso_audit_events_dropped_total 0",
		"permiso_audit_events_written_total 0",
		"permiso_audit_events_failed_total 0",
		`permiso_audit_record_wait_seconds_count{outcome="queued"} 0`,
		`permiso_audit_record_wait_seconds_count{outcome="dropped"} 0`,
	)
	a := m.AuditWriter()
	a.Written(5)
	a.Failed(2)
	a.Dropped(1)
	a.Waited(30*time.Millisecond, true)
	a.Waited(2*time.Second, false)
	m.RegisterAuditQueue(func() AuditQueueStats { return AuditQueueStats{Queued: 7, Capacity: 8192, Waiting: 3} })
	scrapeHas(t, m, "metrics output",
		"permiso_audit_events_written_total 5",
		"permiso_audit_events_failed_total 2",
		"permiso_audit_events_dropped_total 1",
		`permiso_audit_record_wait_seconds_count{outcome="queued"} 1`,
		`permiso_audit_record_wait_seconds_sum{outcome="queued"} 0.03`,
		`permiso_audit_record_wait_seconds_count{outcome="dropped"} 1`,
		`permiso_audit_record_wait_seconds_bucket{outcome="dropped",le="1"} 0`,
		`permiso_audit_queue_events{state="queued"} 7`,
		`permiso_audit_queue_events{state="capacity"} 8192`,
		"permiso_audit_record_waiting 3",
	)
}
