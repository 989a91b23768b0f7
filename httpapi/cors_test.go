package httpapi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func corsServer(t *testing.T, c CORS, hosts ...string) *testServer {
	t.Helper()
	opts := testOptions()
	opts.CORS = c
	opts.AllowedHosts = hosts
	return newTestServer(t, opts, healthyChecks(), nil)
}

func preflight(s *testServer, origin, method, headers string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodOptions, "/api/v1/auth/token", nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		r.Header.Set("Access-Control-Request-Headers", headers)
	}
	return s.do(r)
}

func withOrigin(s *testServer, path, origin string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	return s.do(r)
}

func wantVary(t *testing.T, w *httptest.ResponseRecorder, values ...string) {
	t.Helper()
	got := w.Header().Values("Vary")
	for _, v := range values {
		if !slices.Contains(got, v) {
			t.Errorf("Vary %v lacks %s", got, v)
		}
	}
}

func TestCORSListedOrigins(t *testing.T) {
	s := corsServer(t, CORS{AllowedOrigins: []string{"https://app.example.com"},
		AllowedMethods: []string{"GET", "POST"}, AllowedHeaders: []string{"Authorization", "Content-Type"}, AllowCredentials: true})

	// Preflight, answered before routing and authentication (the route
	// has no OPTIONS handler).
	w := preflight(s, "https://app.example.com", "POST", "authorization, content-type")
	if w.Code != http.StatusNoContent {
		t.Fatalf("preflight: %d %s", w.Code, w.Body)
	}
	h := w.Header()
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET, POST",
		"Access-Control-Allow-Headers":     "Authorization, Content-Type",
		"Access-Control-Max-Age":           "600",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	wantVary(t, w, "Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
	if h.Get("X-Request-Id") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("preflight lacks the request id or security headers: %v", h)
	}

	// Actual request from the allowed origin.
	w = withOrigin(s, "/health", "https://app.example.com")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		w.Header().Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "RateLimit-Remaining") {
		t.Errorf("actual request: %d %v", w.Code, w.Header())
	}
	wantVary(t, w, "Origin")

	// Another origin: no CORS headers; its preflight is refused.
	w = withOrigin(s, "/health", "https://evil.example.net")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin: %d %v", w.Code, w.Header())
	}
	wantVary(t, w, "Origin")
	w = preflight(s, "https://evil.example.net", "POST", "")
	if w.Code != http.StatusForbidden || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %d %v", w.Code, w.Header())
	}
	if m := decodeBody(t, w); m["error"] != "forbidden" {
		t.Errorf("foreign preflight body %v", m)
	}
	// No Origin: untouched, but still Vary: Origin for caches.
	w = withOrigin(s, "/health", "")
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no Origin: %v", w.Header())
	}
	wantVary(t, w, "Origin")
	// A plain OPTIONS without preflight headers goes to the router.
	r := httptest.NewRequest(http.MethodOptions, "/health", nil)
	if w := s.do(r); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("plain OPTIONS: %d, want 405 from the router", w.Code)
	}
}

func TestCORSWildcards(t *testing.T) {
	// Any header with credentials: the requested headers are echoed (a
	// literal * would not cover Authorization, and means nothing with
	// credentials); any method: the requested one.
	s := corsServer(t, CORS{AllowedOrigins: []string{"https://a.example"}, AllowedMethods: []string{"*"},
		AllowedHeaders: []string{"*"}, AllowCredentials: true})
	w := preflight(s, "https://a.example", "PATCH", "Authorization, X-Custom")
	if got := w.Header().Get("Access-Control-Allow-Headers"); got != "Authorization, X-Custom" {
		t.Errorf("Allow-Headers %q, want the request's headers echoed", got)
	}
	if got := w.Header().Get("Access-Control-Allow-Methods"); got != "PATCH" {
		t.Errorf("Allow-Methods %q, want PATCH", got)
	}

	// Any origin: "*" and never credentials, even if asked for.
	s = corsServer(t, CORS{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"},
		AllowedHeaders: []string{"*"}, AllowCredentials: true})
	for _, w := range []*httptest.ResponseRecorder{
		preflight(s, "https://anyone.example", "GET", "Authorization"),
		withOrigin(s, "/health", "https://anyone.example"),
	} {
		if w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("wildcard origin: %v, want * without credentials", w.Header())
		}
		wantVary(t, w, "Origin")
	}

	// No ALLOWED_ORIGINS: no CORS at all.
	s = corsServer(t, CORS{})
	w = preflight(s, "https://a.example", "GET", "")
	if w.Code < 400 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: preflight %d %v", w.Code, w.Header())
	}
}

func TestAllowedHosts(t *testing.T) {
	s := corsServer(t, CORS{}, "auth.example.com", "*.internal.example", "127.0.0.1", "::1")
	for host, want := range map[string]int{
		"auth.example.com":       200,
		"AUTH.Example.COM:8443":  200,
		"auth.example.com.":      200,
		"a.internal.example":     200,
		"a.b.internal.example:1": 200,
		"internal.example":       400,
		"evil-internal.example":  400,
		"127.0.0.1:8000":         200,
		"[::1]:8000":             200,
		"evil.example.com":       400,
		"auth.example.com.evil":  400,
		"":                       400,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		w := s.do(r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
			continue
		}
		if want == 400 {
			m := decodeBody(t, w)
			if m["error"] != "invalid_host" || m["request_id"] == "" || m["request_id"] != w.Header().Get("X-Request-Id") {
				t.Errorf("Host %q: body %v", host, m)
			}
		}
	}
	// The health endpoints answer any Host: container health checks and
	// load balancers reach an instance by its address.
	for _, path := range []string{"/health", "/health/live", "/health/ready", "/health/live/"} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Host = "10.0.0.7:8000"
		if w := s.do(r); w.Code == http.StatusBadRequest {
			t.Errorf("%s with an unlisted Host: 400 %s", path, w.Body)
		}
	}
	// Empty list and "*": any host.
	for _, hosts := range [][]string{nil, {"*"}} {
		s := corsServer(t, CORS{}, hosts...)
		r := httptest.NewRequest(http.MethodGet, "/health/live", nil)
		r.Host = "whatever.example"
		if w := s.do(r); w.Code != 200 {
			t.Errorf("ALLOWED_HOSTS %v: %d", hosts, w.Code)
		}
	}
}
