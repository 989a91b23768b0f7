package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso/internal/testlog"
)

var fixedNow = time.Date(2025, 7, 27, 13, 34, 30, 0, time.FixedZone("CEST", 2*3600))

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func testOptions() Options {
	return Options{
		AppName:        "permiso Authentication API",
		Version:        "1.2.3",
		Environment:    "test",
		APIV1Prefix:    "/api/v1",
		DocsURL:        "/docs",
		TrustedProxies: loopback,
	}
}

type testServer struct {
	h   http.Handler
	log *testlog.Buffer
}

func newTestServer(t *testing.T, opts Options, checks []HealthCheck, routes func(*http.ServeMux)) *testServer {
	t.Helper()
	log := &testlog.Buffer{}
	h := NewServer(Deps{
		Logger:     slog.New(slog.NewJSONHandler(log, nil)),
		Options:    opts,
		Checks:     checks,
		Now:        func() time.Time { return fixedNow },
		testRoutes: routes,
	})
	return &testServer{h: h, log: log}
}

func (s *testServer) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	return w
}

func (s *testServer) get(path string) *httptest.ResponseRecorder {
	return s.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func decodeBody(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json; body %s", ct, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, w.Body)
	}
	return m
}

func healthyChecks() []HealthCheck {
	return []HealthCheck{
		{Name: "database", Check: func(ctx context.Context) (map[string]any, error) {
			return map[string]any{"backend": "sqlite"}, nil
		}},
		StaticCheck("cache", map[string]any{"backend": "in-process"}),
	}
}

func TestRoot(t *testing.T) {
	s := newTestServer(t, testOptions(), nil, nil)
	w := s.get("/")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	want := map[string]any{
		"message": "permiso Authentication API", "version": "1.2.3", "environment": "test",
		"docs": "/docs", "health": "/health",
	}
	got := decodeBody(t, w)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	opts := testOptions()
	opts.DocsURL = ""
	got = decodeBody(t, newTestServer(t, opts, nil, nil).get("/"))
	if got["docs"] != "Documentation disabled" {
		t.Errorf("docs = %v", got["docs"])
	}
}

func TestHealthy(t *testing.T) {
	s := newTestServer(t, testOptions(), healthyChecks(), nil)
	for _, path := range []string{"/health", "/health/"} {
		w := s.get(path)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, w.Code, w.Body)
		}
		got := decodeBody(t, w)
		if got["status"] != "healthy" || got["service"] != "permiso Authentication API" ||
			got["version"] != "1.2.3" || got["environment"] != "test" {
			t.Errorf("%s: body %v", path, got)
		}
		if got["timestamp"] != "2025-07-27T11:34:30Z" {
			t.Errorf("timestamp = %v, want UTC RFC 3339 with Z", got["timestamp"])
		}
		checks := got["checks"].(map[string]any)
		for _, name := range []string{"database", "cache"} {
			c, ok := checks[name].(map[string]any)
			if !ok {
				t.Fatalf("no %s check in %v", name, checks)
			}
			if c["status"] != "healthy" || c["backend"] == nil {
				t.Errorf("%s check = %v", name, c)
			}
			if _, ok := c["latency_ms"].(float64); !ok {
				t.Errorf("%s check has no numeric latency_ms: %v", name, c)
			}
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
		}
	}
}

const secretErr = "dial tcp 10.1.2.3:5432: password authentication failed for user permiso_admin"

func failingChecks() []HealthCheck {
	c := healthyChecks()
	c[0].Check = func(ctx context.Context) (map[string]any, error) {
		return nil, errors.New(secretErr)
	}
	return c
}

func TestUnhealthy(t *testing.T) {
	s := newTestServer(t, testOptions(), failingChecks(), nil)
	w := s.get("/health")
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", w.Code)
	}
	if strings.Contains(w.Body.String(), "10.1.2.3") || strings.Contains(w.Body.String(), "password") {
		t.Fatalf("health body leaks the check error: %s", w.Body)
	}
	got := decodeBody(t, w)
	if got["status"] != "unhealthy" {
		t.Errorf("status = %v", got["status"])
	}
	checks := got["checks"].(map[string]any)
	db := checks["database"].(map[string]any)
	if db["status"] != "unhealthy" || db["error"] != "check failed" {
		t.Errorf("database = %v", db)
	}
	if checks["cache"].(map[string]any)["status"] != "healthy" {
		t.Errorf("cache = %v", checks["cache"])
	}
	// The operator sees the real error in the log, with the request id.
	recs := s.log.Records(t, "health check failed")
	if len(recs) != 1 || recs[0]["error"] != secretErr || recs[0]["request_id"] != w.Header().Get("X-Request-Id") {
		t.Errorf("health failure log = %v", recs)
	}

	// Readiness follows the checks, liveness does not.
	if w := s.get("/health/ready"); w.Code != http.StatusServiceUnavailable || decodeBody(t, w)["status"] != "not_ready" {
		t.Errorf("ready: %d %s", w.Code, w.Body)
	}
	if w := s.get("/health/live/"); w.Code != http.StatusOK || decodeBody(t, w)["status"] != "alive" {
		t.Errorf("live: %d %s", w.Code, w.Body)
	}
}

func TestReadyAndLive(t *testing.T) {
	s := newTestServer(t, testOptions(), healthyChecks(), nil)
	if w := s.get("/health/ready"); w.Code != http.StatusOK || decodeBody(t, w)["status"] != "ready" {
		t.Errorf("ready: %d %s", w.Code, w.Body)
	}
	if w := s.get("/health/ready/"); w.Code != http.StatusOK {
		t.Errorf("ready/: %d", w.Code)
	}
	if w := s.get("/health/live"); w.Code != http.StatusOK || decodeBody(t, w)["status"] != "alive" {
		t.Errorf("live: %d %s", w.Code, w.Body)
	}
}

func TestHealthCheckTimeout(t *testing.T) {
	opts := testOptions()
	opts.HealthCheckTimeout = 50 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	checks := []HealthCheck{
		{Name: "database", Check: func(ctx context.Context) (map[string]any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
		{Name: "cache", Check: func(ctx context.Context) (map[string]any, error) {
			<-release // ignores its context
			return nil, nil
		}},
		{Name: "panicky", Check: func(ctx context.Context) (map[string]any, error) {
			panic("boom")
		}},
	}
	s := newTestServer(t, opts, checks, nil)
	start := time.Now()
	w := s.get("/health")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("health took %v despite a 50ms timeout", d)
	}
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", w.Code)
	}
	checksOut := decodeBody(t, w)["checks"].(map[string]any)
	for _, name := range []string{"database", "cache"} {
		if c := checksOut[name].(map[string]any); c["error"] != "check timed out" {
			t.Errorf("%s = %v", name, c)
		}
	}
	if c := checksOut["panicky"].(map[string]any); c["status"] != "unhealthy" || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("panicky = %v", c)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	s := newTestServer(t, testOptions(), healthyChecks(), nil)
	for _, path := range []string{"/nope", "/health//", "/api/v1/users", "/health/live/x"} {
		w := s.get(path)
		if w.Code != http.StatusNotFound {
			t.Errorf("%s: status %d", path, w.Code)
			continue
		}
		got := decodeBody(t, w)
		if got["error"] != "not_found" || got["error_description"] == "" || got["request_id"] != w.Header().Get("X-Request-Id") {
			t.Errorf("%s: body %v", path, got)
		}
	}
	for _, path := range []string{"/health", "/health/", "/"} {
		w := s.do(httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}")))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: status %d", path, w.Code)
			continue
		}
		if allow := w.Header().Get("Allow"); !strings.Contains(allow, "GET") {
			t.Errorf("POST %s: Allow = %q", path, allow)
		}
		if got := decodeBody(t, w); got["error"] != "method_not_allowed" {
			t.Errorf("POST %s: body %v", path, got)
		}
	}
	// HEAD is served by GET routes.
	if w := s.do(httptest.NewRequest(http.MethodHead, "/health/live", nil)); w.Code != http.StatusOK {
		t.Errorf("HEAD: %d", w.Code)
	}
}

func TestPanicRecovery(t *testing.T) {
	routes := func(mux *http.ServeMux) {
		mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Leak", "1")
			panic("secret internals: password=hunter2")
		})
	}
	s := newTestServer(t, testOptions(), nil, routes)
	w := s.get("/panic")
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", w.Code)
	}
	if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "secret") {
		t.Fatalf("panic text leaked: %s", w.Body)
	}
	id := w.Header().Get("X-Request-Id")
	got := decodeBody(t, w)
	if got["error"] != "internal_error" || got["request_id"] != id || id == "" {
		t.Errorf("body %v, X-Request-Id %q", got, id)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("security headers missing on the 500")
	}
	if w.Header().Get("X-Leak") != "" {
		t.Error("headers set by the panicking handler survived")
	}
	recs := s.log.Records(t, "panic serving request")
	if len(recs) != 1 {
		t.Fatalf("panic logged %d times", len(recs))
	}
	if recs[0]["request_id"] != id || !strings.Contains(recs[0]["panic"].(string), "hunter2") ||
		!strings.Contains(recs[0]["stack"].(string), "server_test.go") {
		t.Errorf("panic record = %v", recs[0])
	}
	if n := len(s.log.Records(t, "internal error")); n != 0 {
		t.Errorf("panic logged again as internal error (%d)", n)
	}
	access := s.log.Records(t, "request")
	if len(access) != 1 || access[0]["status"] != float64(500) || access[0]["route"] != "GET /panic" {
		t.Errorf("access log = %v", access)
	}
}

func TestPanicAfterWriteAborts(t *testing.T) {
	s := &server{logger: slog.New(slog.DiscardHandler)}
	h := s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"partial":`))
		panic("late")
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

func TestRequestID(t *testing.T) {
	s := newTestServer(t, testOptions(), nil, nil)
	tests := []struct {
		name, remote, header string
		honoured             bool
	}{
		{"untrusted peer", "203.0.113.9:5555", "abc-123", false},
		{"trusted proxy", "127.0.0.1:5555", "abc-123.X_y", true},
		{"trusted ipv6 proxy", "[::1]:5555", "abc", true},
		{"trusted, no header", "127.0.0.1:5555", "", false},
		{"trusted, bad chars", "127.0.0.1:5555", "abc def", false},
		{"trusted, injection", "127.0.0.1:5555", "abc\"},{\"x", false},
		{"trusted, too long", "127.0.0.1:5555", strings.Repeat("a", 129), false},
		{"trusted, 128 chars", "127.0.0.1:5555", strings.Repeat("a", 128), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/nope", nil)
			r.RemoteAddr = tt.remote
			if tt.header != "" {
				r.Header.Set("X-Request-Id", tt.header)
			}
			w := s.do(r)
			id := w.Header().Get("X-Request-Id")
			if tt.honoured {
				if id != tt.header {
					t.Fatalf("X-Request-Id = %q, want %q", id, tt.header)
				}
			} else if _, err := uuid.Parse(id); err != nil || id == tt.header {
				t.Fatalf("X-Request-Id = %q, want a new UUID", id)
			}
			if decodeBody(t, w)["request_id"] != id {
				t.Fatal("error body request_id differs from the header")
			}
		})
	}
	a, b := s.get("/"), s.get("/")
	if a.Header().Get("X-Request-Id") == b.Header().Get("X-Request-Id") {
		t.Fatal("two requests got the same id")
	}
}

func TestClientIP(t *testing.T) {
	opts := testOptions()
	opts.TrustedProxies = append(loopback, netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"))
	routes := func(mux *http.ServeMux) {
		mux.HandleFunc("GET /ip", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, ClientIP(r.Context()).String())
		})
	}
	s := newTestServer(t, opts, nil, routes)
	tests := []struct {
		name   string
		remote string
		xff    []string
		realIP string
		want   string
	}{
		{"direct client", "203.0.113.9:5555", nil, "", "203.0.113.9"},
		{"spoofed XFF from untrusted peer", "203.0.113.9:5555", []string{"1.2.3.4"}, "", "203.0.113.9"},
		{"spoofed X-Real-IP from untrusted peer", "203.0.113.9:5555", nil, "1.2.3.4", "203.0.113.9"},
		{"spoofed both from untrusted peer", "203.0.113.9:5555", []string{"127.0.0.1"}, "10.0.0.1", "203.0.113.9"},
		{"trusted proxy, XFF", "127.0.0.1:1", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"trusted proxy, client-supplied prefix ignored", "127.0.0.1:1", []string{"1.2.3.4, 198.51.100.7"}, "", "198.51.100.7"},
		{"proxy chain", "10.0.0.2:1", []string{"1.2.3.4, 198.51.100.7, 10.0.0.9"}, "", "198.51.100.7"},
		{"proxy chain over several lines", "10.0.0.2:1", []string{"1.2.3.4", "198.51.100.7", "10.0.0.9"}, "", "198.51.100.7"},
		{"all trusted", "127.0.0.1:1", []string{"10.0.0.5, 10.0.0.9"}, "", "10.0.0.5"},
		{"garbage from client", "127.0.0.1:1", []string{"garbage, 198.51.100.7"}, "", "198.51.100.7"},
		{"garbage at the right", "127.0.0.1:1", []string{"198.51.100.7, garbage"}, "", "127.0.0.1"},
		{"garbage behind a trusted hop", "127.0.0.1:1", []string{"garbage, 10.0.0.9"}, "", "10.0.0.9"},
		{"XFF with port", "127.0.0.1:1", []string{"198.51.100.7:4711"}, "", "198.51.100.7"},
		{"XFF ipv6", "[::1]:1", []string{"2001:db8::1"}, "", "2001:db8::1"},
		{"XFF bracketed ipv6 with port", "[::1]:1", []string{"[2001:db8::1]:443"}, "", "2001:db8::1"},
		{"XFF mapped ipv4", "127.0.0.1:1", []string{"::ffff:198.51.100.7"}, "", "198.51.100.7"},
		{"trusted, empty XFF, X-Real-IP", "127.0.0.1:1", nil, "198.51.100.8", "198.51.100.8"},
		{"trusted, XFF wins over X-Real-IP", "127.0.0.1:1", []string{"198.51.100.7"}, "198.51.100.8", "198.51.100.7"},
		{"trusted, bad X-Real-IP", "127.0.0.1:1", nil, "nonsense", "127.0.0.1"},
		{"trusted, blank XFF", "127.0.0.1:1", []string{" , "}, "198.51.100.8", "198.51.100.8"},
		{"zoned XFF refused", "127.0.0.1:1", []string{"fe80::1%eth0"}, "", "127.0.0.1"},
		{"zoned peer", "[fe80::1%eth0]:1", []string{"198.51.100.7"}, "", "fe80::1"},
		{"mapped trusted peer", "[::ffff:127.0.0.1]:1", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"unparseable peer", "pipe", []string{"198.51.100.7"}, "", "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/ip", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				r.Header.Set("X-Real-IP", tt.realIP)
			}
			w := s.do(r)
			if got := w.Body.String(); got != tt.want {
				t.Fatalf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
	if ClientIP(context.Background()).IsValid() || RequestID(context.Background()) != "" {
		t.Fatal("ClientIP/RequestID outside a request must be zero")
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := newTestServer(t, testOptions(), healthyChecks(), nil)
	want := map[string]string{
		"X-Content-Type-Options":     "nosniff",
		"X-Frame-Options":            "DENY",
		"Referrer-Policy":            "no-referrer",
		"Content-Security-Policy":    "default-src 'none'; frame-ancestors 'none'",
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/", nil),
		httptest.NewRequest(http.MethodGet, "/health", nil),
		httptest.NewRequest(http.MethodGet, "/missing", nil),
		httptest.NewRequest(http.MethodDelete, "/health", nil),
	} {
		w := s.do(r)
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", r.Method, r.URL.Path, k, got, v)
			}
		}
		if w.Header().Get("Strict-Transport-Security") != "" {
			t.Errorf("%s %s: HSTS over plain HTTP", r.Method, r.URL.Path)
		}
	}

	tests := []struct {
		name   string
		remote string
		tls    bool
		proto  string
		hsts   bool
	}{
		{"plain", "203.0.113.9:1", false, "", false},
		{"tls", "203.0.113.9:1", true, "", true},
		{"trusted proxy says https", "127.0.0.1:1", false, "https", true},
		{"trusted proxy says HTTPS, chain", "127.0.0.1:1", false, "HTTPS, http", true},
		{"trusted proxy says http", "127.0.0.1:1", false, "http", false},
		{"untrusted peer says https", "203.0.113.9:1", false, "https", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/health/live", nil)
		r.RemoteAddr = tt.remote
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if tt.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tt.proto)
		}
		got := s.do(r).Header().Get("Strict-Transport-Security")
		if tt.hsts && got != "max-age=31536000; includeSubDomains" || !tt.hsts && got != "" {
			t.Errorf("%s: HSTS = %q", tt.name, got)
		}
	}
}

type echoRequest struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func echoRoute(mux *http.ServeMux) {
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var req echoRequest
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, req)
	})
}

func TestBodyLimitAndDecodeJSON(t *testing.T) {
	opts := testOptions()
	opts.MaxBodyBytes = 64
	s := newTestServer(t, opts, nil, echoRoute)
	big := `{"name":"` + strings.Repeat("x", 100) + `"}`

	// Declared Content-Length over the limit.
	w := s.do(httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader(big)))
	if w.Code != http.StatusRequestEntityTooLarge || decodeBody(t, w)["error"] != "request_too_large" {
		t.Fatalf("big body: %d %s", w.Code, w.Body)
	}
	// No Content-Length (chunked): caught while decoding.
	body := io.NopCloser(strings.NewReader(big))
	r := httptest.NewRequest(http.MethodPost, "/echo/", body)
	r.ContentLength = -1
	w = s.do(r)
	if w.Code != http.StatusRequestEntityTooLarge || decodeBody(t, w)["error"] != "request_too_large" {
		t.Fatalf("chunked big body: %d %s", w.Code, w.Body)
	}
	// The limit is set on the chain's own copy of the request, never on
	// the request the server was given.
	if r.Body != body {
		t.Fatal("the server's request was modified")
	}

	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"ok, unknown fields ignored", `{"name":"a","count":2,"extra":{"x":1}}`, 200, ""},
		{"empty", ``, 422, "body"},
		{"malformed", `{"name":`, 422, "body"},
		{"syntax", `{"name" "a"}`, 422, "body"},
		{"wrong type", `{"name":1}`, 422, "name"},
		{"wrong type int", `{"count":"two"}`, 422, "count"},
		{"not an object", `[1,2]`, 422, "body"},
		{"trailing data", `{"name":"a"} {"name":"b"}`, 422, "body"},
		{"trailing garbage", `{"name":"a"}xyz`, 422, "body"},
		{"trailing whitespace", "{\"name\":\"a\"}\n\t ", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := s.do(httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader(tt.body)))
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			got := decodeBody(t, w)
			if tt.status == 200 {
				return
			}
			if got["error"] != "validation_error" {
				t.Fatalf("body %v", got)
			}
			details, _ := got["details"].([]any)
			if len(details) == 0 || details[0].(map[string]any)["field"] != tt.field {
				t.Fatalf("details = %v, want field %q", got["details"], tt.field)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	s := newTestServer(t, testOptions(), healthyChecks(), nil)
	r := httptest.NewRequest(http.MethodGet, "/health/", nil)
	r.Header.Set("User-Agent", "probe/1.0")
	w := s.do(r)
	lines := strings.Split(strings.TrimSpace(s.log.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one log line, got %d: %s", len(lines), s.log)
	}
	recs := s.log.Records(t, "request")
	if len(recs) != 1 {
		t.Fatalf("records: %v", recs)
	}
	rec := recs[0]
	want := map[string]any{
		"method": "GET", "route": "GET /health", "path": "/health/", "status": float64(200),
		"request_id": w.Header().Get("X-Request-Id"), "client_ip": "192.0.2.1", "user_agent": "probe/1.0",
		"bytes": float64(w.Body.Len()),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	if _, ok := rec["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms = %v", rec["duration_ms"])
	}

	s.get("/nope")
	recs = s.log.Records(t, "request")
	if len(recs) != 2 || recs[1]["status"] != float64(404) || recs[1]["route"] != "" {
		t.Errorf("404 record: %v", recs)
	}
}
