package e2e

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHealth: GET /health reports a healthy database (and cache) on every
// backend, /health/live and /health/ready answer, and none is cached.
func TestHealth(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b.env(t, map[string]string{
			"APP_NAME":    "permiso e2e",
			"VERSION":     "9.9.9-e2e",
			"ENVIRONMENT": "test",
		}))

		r := s.get(t, "/health", "")
		m := expect(t, r, http.StatusOK)
		if m["status"] != "healthy" || m["service"] != "permiso e2e" || m["version"] != "9.9.9-e2e" || m["environment"] != "test" {
			t.Errorf("%s: want status healthy, service/version/environment from APP_NAME/VERSION/ENVIRONMENT", r)
		}
		checks, ok := m["checks"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no checks object", r)
		}
		db, ok := checks["database"].(map[string]any)
		if !ok || db["status"] != "healthy" {
			t.Fatalf("%s: checks.database.status is not healthy", r)
		}
		if _, ok := db["latency_ms"]; !ok {
			t.Errorf("%s: checks.database has no latency_ms", r)
		}
		for name, c := range checks {
			if c, ok := c.(map[string]any); !ok || c["status"] != "healthy" {
				t.Errorf("%s: check %s is not healthy", r, name)
			}
		}
		if s.Env["REDIS_URL"] != "" && !strings.Contains(strings.ToLower(string(r.Body)), "redis") {
			t.Errorf("%s: with REDIS_URL set, /health does not report Redis", r)
		}
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("%s: Cache-Control %q, want no-store", r, cc)
		}

		if r := s.get(t, "/health/live", ""); r.Status != http.StatusOK {
			t.Errorf("%s: want 200", r)
		} else if _, ok := r.JSON(t)["status"].(string); !ok {
			t.Errorf("%s: want a status", r)
		}
		r = s.get(t, "/health/ready", "")
		mustStatus(t, r, http.StatusOK)
		if m := r.JSON(t); m["status"] != "ready" {
			t.Errorf("%s: want status ready", r)
		}
		// Trailing slashes are optional on every route (docs/api.md).
		if r := s.get(t, "/health/", ""); r.Status != http.StatusOK {
			t.Errorf("%s: want 200 (trailing slash)", r)
		}

		// permiso check reaches the same database (and Redis).
		if res := s.cli(t, "", "check"); res.Code != 0 {
			t.Errorf("permiso check: exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
		}
	})
}

// TestRoot: GET / shows the name, version and links.
func TestRoot(t *testing.T) {
	t.Parallel()
	s := startServer(t, sqliteOnly(t).env(t, map[string]string{"APP_NAME": "permiso e2e", "VERSION": "1.2.3-e2e"}))
	r := s.get(t, "/", "")
	m := expect(t, r, http.StatusOK)
	if m["message"] != "permiso e2e" || m["version"] != "1.2.3-e2e" || m["docs"] != "/docs" || m["health"] != "/health" {
		t.Errorf("%s: want message=APP_NAME, version=VERSION, docs /docs, health /health", r)
	}
}

// everyKindOfAnswer is a request of each kind of answer the server's
// middleware wraps: a page and the health checks (200), an unknown route
// (404) and a method a route does not take (405).
var everyKindOfAnswer = []request{
	{method: http.MethodGet, path: "/"},
	{method: http.MethodGet, path: "/health"},
	{method: http.MethodGet, path: "/health/live"},
	{method: http.MethodGet, path: "/no/such/route"},
	{method: http.MethodPost, path: "/health"},
	{method: http.MethodDelete, path: "/health"},
}

// TestRequestID: every response carries X-Request-Id, unique per request,
// equal to the request_id of error bodies; the header is taken from a
// trusted proxy only, and only when sane.
func TestRequestID(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)

	t.Run("trusted loopback proxy", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, b.env(t, nil)) // TRUSTED_PROXIES defaults to loopback
		seen := map[string]bool{}
		for _, rq := range everyKindOfAnswer {
			r := s.do(t, rq)
			id := r.Header.Get("X-Request-Id")
			if seen[id] {
				t.Errorf("%s: X-Request-Id %q repeated", r, id)
			}
			seen[id] = true
			if r.Status >= 400 {
				if got := r.JSON(t)["request_id"]; got != id {
					t.Errorf("%s: request_id %v, want the X-Request-Id %q", r, got, id)
				}
			}
		}

		r := s.do(t, request{method: http.MethodGet, path: "/no/such/route", header: map[string]string{"X-Request-Id": "e2e-trace.42_A"}})
		if got := r.Header.Get("X-Request-Id"); got != "e2e-trace.42_A" {
			t.Errorf("%s: X-Request-Id %q, want the trusted proxy's e2e-trace.42_A", r, got)
		}
		if got := r.JSON(t)["request_id"]; got != "e2e-trace.42_A" {
			t.Errorf("%s: request_id %v, want e2e-trace.42_A", r, got)
		}
		for _, bad := range []string{"has spaces in it", strings.Repeat("x", 129), "quote\"d"} {
			r := s.do(t, request{method: http.MethodGet, path: "/", header: map[string]string{"X-Request-Id": bad}})
			if got := r.Header.Get("X-Request-Id"); got == bad || got == "" {
				t.Errorf("X-Request-Id %q: answered with %q, want a fresh id", bad, got)
			}
		}
	})

	t.Run("no trusted proxy", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, b.env(t, map[string]string{"TRUSTED_PROXIES": ""}))
		r := s.do(t, request{method: http.MethodGet, path: "/", header: map[string]string{"X-Request-Id": "spoofed-id"}})
		if got := r.Header.Get("X-Request-Id"); got == "spoofed-id" || got == "" {
			t.Errorf("%s: X-Request-Id %q from an untrusted peer was believed", r, got)
		}
	})
}

// TestSecurityHeaders: the security headers are on every response; HSTS
// only when a trusted proxy says the client used HTTPS.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := startServer(t, sqliteOnly(t).env(t, nil))
	for _, rq := range everyKindOfAnswer {
		r := s.do(t, rq)
		want := map[string]string{
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
		}
		for k, v := range want {
			if got := r.Header.Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", r, k, got, v)
			}
		}
		if r.Header.Get("Referrer-Policy") == "" {
			t.Errorf("%s: no Referrer-Policy", r)
		}
		if h := r.Header.Get("Strict-Transport-Security"); h != "" {
			t.Errorf("%s: HSTS %q over plain HTTP", r, h)
		}
	}
	r := s.do(t, request{method: http.MethodGet, path: "/", header: map[string]string{"X-Forwarded-Proto": "https"}})
	if h := r.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=") {
		t.Errorf("%s: HSTS %q behind a trusted TLS proxy, want max-age=...", r, h)
	}
}

// TestUnknownRoute: unknown paths get a JSON 404 and wrong methods a JSON
// 405 with Allow, both in the error envelope.
func TestUnknownRoute(t *testing.T) {
	t.Parallel()
	s := startServer(t, sqliteOnly(t).env(t, nil))
	for _, path := range []string{"/no/such/route", "/api/v1/no-such-thing", "/api/v2/auth/token"} {
		r := s.get(t, path, "")
		if r.Status != http.StatusNotFound {
			t.Errorf("%s: want 404", r)
			continue
		}
		m := r.JSON(t)
		if m["error"] != "not_found" || m["error_description"] == nil || m["request_id"] != r.Header.Get("X-Request-Id") {
			t.Errorf("%s: want {error: not_found, error_description, request_id}", r)
		}
	}
	r := s.do(t, request{method: http.MethodPut, path: "/health/live"})
	mustStatus(t, r, http.StatusMethodNotAllowed)
	if !strings.Contains(r.Header.Get("Allow"), "GET") {
		t.Errorf("%s: Allow %q, want GET", r, r.Header.Get("Allow"))
	}
	if m := r.JSON(t); m["error"] == nil || m["request_id"] == nil {
		t.Errorf("%s: want the JSON error envelope", r)
	}
}

// TestCreateAdmin: create-admin is idempotent (the same administrator
// again says it exists, exits non-zero and changes nothing), refuses a
// username or email held by another user (also in another case) and a
// weak password, and never reads the password from argv.
func TestCreateAdmin(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		env := b.env(t, nil)
		create := func(username, email, password string, extra ...string) cliResult {
			args := append([]string{"create-admin", "--username", username, "--email", email, "--password-stdin"}, extra...)
			return runCLI(t, env, password+"\n", args...)
		}
		if r := create("root", "root@example.com", strongPassword); r.Code != 0 {
			t.Fatalf("first create-admin: exit %d: %s", r.Code, r.Stderr)
		}
		if r := create("Root", "ROOT@example.com", "Another-Str0ng-Passw0rd!"); r.Code == 0 || !strings.Contains(r.Stderr, "already exists; nothing changed") {
			t.Errorf("create-admin of the same administrator again: exit %d: %s %s", r.Code, r.Stdout, r.Stderr)
		}
		for _, c := range []struct{ name, username, email string }{
			{"same user", "root", "root@example.com"},
			{"username in another case", "ROOT", "other@example.com"},
			{"email in another case", "other", "Root@Example.COM"},
		} {
			r := create(c.username, c.email, strongPassword)
			if r.Code == 0 {
				t.Errorf("%s: second create-admin exited 0: %s", c.name, r.Stdout)
			}
			if !strings.Contains(r.Stderr, "exists") {
				t.Errorf("%s: stderr %q does not say the user exists", c.name, r.Stderr)
			}
		}
		if r := create("weak", "weak@example.com", "password"); r.Code == 0 {
			t.Errorf("create-admin accepted the password %q", "password")
		}
		if r := runCLI(t, env, "", "create-admin", "--username", "argv", "--email", "argv@example.com", strongPassword); r.Code == 0 {
			t.Errorf("create-admin took a password from argv")
		}
	})
}

// TestSignalsAndShutdownTimeout (docs/deployment.md, "Shutdown and logs"): SIGHUP without LOG_FILE is
// acknowledged, not fatal; a request still open at
// SHUTDOWN_TIMEOUT_SECONDS is cut off and the process still exits 0.
func TestSignalsAndShutdownTimeout(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	s := startServer(t, b.env(t, map[string]string{"SHUTDOWN_TIMEOUT_SECONDS": "1"}))
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if r := s.get(t, "/health/live", ""); r.Status != http.StatusOK {
		t.Fatalf("after SIGHUP: %s", r)
	}
	// A request whose headers never end keeps its connection active past
	// the shutdown timeout.
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /health/live HTTP/1.1\r\nHost: " + u.Host + "\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	s.stop(t) // SIGTERM; checks the exit status is 0
}
