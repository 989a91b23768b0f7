package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// abuseServer is NewServer on real parts (SQLite in memory, in-process
// limiter and lockout unless limiter is given) with opts changed by mod.
func abuseServer(t *testing.T, limiter permiso.RateLimiter, mod func(*Options)) http.Handler {
	t.Helper()
	if limiter == nil {
		limiter = inprocess.NewLimiter()
	}
	return newWired(t, wiring{db: testdb.SQLite(t), noIdentity: true, options: mod,
		authDeps: oauth2.Deps{Lockout: inprocess.NewLockout(5, time.Minute), Limiter: limiter},
		deps:     Deps{Limiter: limiter}}).h
}

func postForm(h http.Handler, path string, form url.Values, forwardedFor string) *httptest.ResponseRecorder {
	r := formRequest(path, form)
	r.RemoteAddr = "127.0.0.1:40000"
	if forwardedFor != "" {
		r.Header.Set("X-Forwarded-For", forwardedFor) // the test peer is loopback: a trusted proxy
	}
	return serve(h, r)
}

func login(h http.Handler, user, ip string) *httptest.ResponseRecorder {
	return postForm(h, "/api/v1/auth/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {"Wrong-Passw0rd!"}}, ip)
}

func wantHeaders(t *testing.T, w *httptest.ResponseRecorder, limit, remaining string) {
	t.Helper()
	if got := w.Header().Get("RateLimit-Limit"); got != limit {
		t.Errorf("RateLimit-Limit %q, want %q", got, limit)
	}
	if got := w.Header().Get("RateLimit-Remaining"); got != remaining {
		t.Errorf("RateLimit-Remaining %q, want %q", got, remaining)
	}
	// A per-minute limit: a request counts for the period plus at most
	// one slot (docs/abuse-resistance.md, "Algorithm: sliding window of
	// slots").
	if reset, err := strconv.Atoi(w.Header().Get("RateLimit-Reset")); err != nil || reset < 0 || reset > 61 {
		t.Errorf("RateLimit-Reset %q, want 0..61 seconds", w.Header().Get("RateLimit-Reset"))
	}
}

// TestLoginRateLimit: RATE_LIMIT_LOGIN per client IP (after
// TRUSTED_PROXIES) on the password grant and change-password, answered in
// the RFC 6749 envelope with Retry-After; allowed responses carry the
// remaining budget; other grants and other IPs have their own budgets.
func TestLoginRateLimit(t *testing.T) {
	h := abuseServer(t, nil, func(o *Options) {
		o.RateLimits = RateLimits{Login: permiso.Limit{Count: 3, Period: time.Minute},
			Refresh: permiso.Limit{Count: 2, Period: time.Minute}, API: permiso.Limit{Count: 1000, Period: time.Minute}}
	})
	for i := range 2 {
		w := login(h, "ghost-"+strconv.Itoa(i), "198.51.100.7")
		if w.Code != http.StatusBadRequest {
			t.Fatalf("login %d: %d %s", i, w.Code, w.Body)
		}
		wantHeaders(t, w, "3", strconv.Itoa(2-i))
	}
	// change-password shares the login budget.
	w := postForm(h, "/api/v1/auth/change-password", url.Values{"username": {"ghost"}, "current_password": {"Wrong-Passw0rd!"},
		"new_password": {"Another-Passw0rd!"}}, "198.51.100.7")
	if w.Code != http.StatusBadRequest {
		t.Fatalf("change-password: %d %s", w.Code, w.Body)
	}
	wantHeaders(t, w, "3", "0")
	for _, path := range []string{"/api/v1/auth/token", "/api/v1/auth/change-password"} {
		w = postForm(h, path, url.Values{"username": {"ghost"}, "password": {"x"}, "current_password": {"x"}, "new_password": {"y"}}, "198.51.100.7")
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("%s: %d %s, want 429", path, w.Code, w.Body)
		}
		m := decodeBody(t, w)
		if m["error"] != "rate_limit_exceeded" || m["request_id"] != nil {
			t.Errorf("%s: body %v, want the RFC 6749 envelope with rate_limit_exceeded", path, m)
		}
		if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 61 {
			t.Errorf("%s: Retry-After %q", path, w.Header().Get("Retry-After"))
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, w.Header().Get("Cache-Control"))
		}
		wantHeaders(t, w, "3", "0")
	}
	// Another client address, and another grant, have their own budgets.
	if w := login(h, "ghost", "198.51.100.8"); w.Code != http.StatusBadRequest {
		t.Errorf("another IP: %d", w.Code)
	}
	if w := login(h, "ghost", "2001:db8:1:2::1"); w.Code != http.StatusBadRequest {
		t.Errorf("an IPv6 client: %d", w.Code)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}
	for i, want := range []int{400, 400, 429} {
		if w := postForm(h, "/api/v1/auth/token", refresh, "198.51.100.7"); w.Code != want {
			t.Errorf("refresh %d: %d, want %d", i, w.Code, want)
		}
	}
	// The refresh endpoint is the same grant, and the same budget.
	if w := postForm(h, "/api/v1/auth/refresh", url.Values{"refresh_token": {"nope"}}, "198.51.100.7"); w.Code != 429 {
		t.Errorf("/auth/refresh: %d, want 429", w.Code)
	}
	// IPv6 clients are counted per /64.
	for i := range 2 {
		login(h, "ghost", "2001:db8:1:2::"+strconv.Itoa(i+2))
	}
	if w := login(h, "ghost", "2001:db8:1:2:ffff::9"); w.Code != 429 {
		t.Errorf("fourth login from one /64: %d, want 429", w.Code)
	}
	// A malformed token request is not a login attempt.
	if w := postForm(h, "/api/v1/auth/token", url.Values{"grant_type": {"password"}}, "198.51.100.9"); w.Code != 400 || w.Header().Get("RateLimit-Limit") == "3" {
		t.Errorf("malformed request: %d, headers %v", w.Code, w.Header())
	}
}

// TestAPIRateLimit: RATE_LIMIT_API counts every request under the API
// prefix, once, with the management envelope outside /auth; operational
// endpoints are not counted.
func TestAPIRateLimit(t *testing.T) {
	h := abuseServer(t, nil, func(o *Options) {
		o.RateLimits = RateLimits{API: permiso.Limit{Count: 3, Period: time.Minute}, Login: permiso.Limit{Count: 100, Period: time.Minute}}
	})
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "127.0.0.1:40000" // the same client as login's
		h.ServeHTTP(w, r)
		return w
	}
	for range 5 {
		if w := get("/health/live"); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "" {
			t.Fatalf("/health/live: %d %v", w.Code, w.Header())
		}
	}
	w := get("/api/v1/nothing-here")
	if w.Code != 404 {
		t.Fatalf("%d", w.Code)
	}
	wantHeaders(t, w, "3", "2")
	// The tighter login limit is not what shows here: the API limit with
	// fewer remaining requests wins.
	w = login(h, "ghost", "")
	wantHeaders(t, w, "3", "1")
	get("/api/v1/users")
	w = get("/api/v1/nothing-here")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("4th API request: %d, want 429", w.Code)
	}
	m := decodeBody(t, w)
	if m["error"] != "rate_limit_exceeded" || m["request_id"] == "" || w.Header().Get("Retry-After") == "" {
		t.Errorf("429 %v %v: want the management envelope and Retry-After", m, w.Header())
	}
	w = login(h, "ghost", "")
	if w.Code != 429 || decodeBody(t, w)["request_id"] != nil {
		t.Errorf("OAuth endpoint over the API limit: %d %s, want 429 in the RFC 6749 envelope", w.Code, w.Body)
	}
}

// TestRateLimitRedisDown: with the limiter unreachable, the token
// endpoint fails closed (503, nothing issued) and the API-wide limit
// fails open.
func TestRateLimitRedisDown(t *testing.T) {
	c := testwire.RedisDown(t)
	h := abuseServer(t, redis.NewLimiter(c, "permiso-test:down:"), func(o *Options) {
		o.RateLimits = RateLimits{API: permiso.Limit{Count: 3, Period: time.Minute}, Login: permiso.Limit{Count: 3, Period: time.Minute}}
	})
	w := login(h, "ghost", "")
	if w.Code != http.StatusServiceUnavailable || decodeBody(t, w)["error"] != "temporarily_unavailable" || w.Header().Get("Retry-After") != "1" {
		t.Errorf("login with the limiter down: %d %s %v", w.Code, w.Body, w.Header())
	}
	for range 5 {
		w = httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/nothing-here", nil))
		if w.Code != http.StatusNotFound {
			t.Fatalf("API request with the limiter down: %d, want it served (404)", w.Code)
		}
	}
}

func TestLimitKey(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.1":                 "ip:login:192.0.2.1",
		"::ffff:192.0.2.1":          "ip:login:192.0.2.1",
		"2001:db8:a:b:c:d:e:f":      "ip:login:2001:db8:a:b::/64",
		"2001:db8:a:b:ffff::1%eth0": "ip:login:2001:db8:a:b::/64",
	} {
		if got := limitKey(limitLogin, mustAddr(t, ip)); got != want {
			t.Errorf("limitKey(%s) = %q, want %q", ip, got, want)
		}
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAccountMailRateLimit: the anonymous requests that send mail
// (password reset, email verification) are limited per IP at the
// RATE_LIMIT_REGISTER rate and the confirmations of mailed tokens at the
// RATE_LIMIT_LOGIN rate, each kind under keys of its own, so neither
// spends the budget of registrations or logins.
func TestAccountMailRateLimit(t *testing.T) {
	h := abuseServer(t, nil, func(o *Options) {
		o.RateLimits = RateLimits{Register: permiso.Limit{Count: 2, Period: time.Hour}, Login: permiso.Limit{Count: 2, Period: time.Minute}}
	})
	post := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"email":"a@example.com","token":"x","new_password":"y"}`))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "127.0.0.1:40000"
		h.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct{ first, second string }{
		{"/api/v1/users/password-reset/request", "/api/v1/users/email-verification/request"},
		{"/api/v1/users/password-reset/confirm", "/api/v1/users/email-verification/confirm"},
	} {
		for i, path := range []string{tc.first, tc.second} {
			if w := post(path); w.Code == http.StatusTooManyRequests {
				t.Fatalf("%s (request %d): 429 within the limit", path, i+1)
			}
		}
		w := post(tc.first)
		if w.Code != http.StatusTooManyRequests || decodeBody(t, w)["error"] != "rate_limit_exceeded" || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s over the limit: %d %s %v", tc.first, w.Code, w.Body, w.Header())
		}
	}
	// Registrations and logins kept their own budgets.
	if w := post("/api/v1/users/register"); w.Code == http.StatusTooManyRequests {
		t.Errorf("registration refused by the mail requests' budget: %s", w.Body)
	}
	if w := login(h, "ghost", ""); w.Code == http.StatusTooManyRequests {
		t.Errorf("login refused by the confirmations' budget: %s", w.Body)
	}
}
