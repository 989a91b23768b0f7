package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso/internal/testwait"
)

// Service clients, sessions, audit log, admin API and the documentation
// pages through the real binary.

const (
	pathSessions = apiPrefix + "/sessions"
	pathAdmin    = apiPrefix + "/admin"
)

// clientCC asks for a client_credentials token with HTTP Basic.
func (s *Server) clientCC(t *testing.T, id, secret string) *Response {
	t.Helper()
	return s.postForm(t, pathToken, url.Values{"grant_type": {"client_credentials"}}, &[2]string{id, secret})
}

// TestServiceClientLifecycleE2E: an administrator creates a client, the
// client gets a token, the secret is rotated (the old one is refused at
// once), the client hits its per-client rate limit (429 with Retry-After,
// visible in /rate-limit), and the client is deleted (its token stops
// working at once).
func TestServiceClientLifecycleE2E(t *testing.T) {
	eachAdminServer(t, nil, []route{post(pathClients)}, func(t *testing.T, s *Server, _ string) {
		admin := s.login(t, adminUser, strongPassword, "").AccessToken

		const perMinute = 4
		created := expect(t, s.call(t, http.MethodPost, pathClients, map[string]any{
			"name": "e2e lifecycle", "client_id": "e2e-life", "rate_limit_per_minute": perMinute, "access_token_lifetime": 900,
		}, admin), http.StatusCreated)
		secret := strOf(created["client_secret"])
		if secret == "" || created["client"].(map[string]any)["client_id"] != "e2e-life" {
			t.Fatalf("create: %v", created)
		}
		tok := mustTokens(t, s.clientCC(t, "e2e-life", secret), false) // request 1

		// Rotation: the old secret is refused at once.
		rot := expect(t, s.call(t, http.MethodPost, pathClients+"/e2e-life/rotate-secret", map[string]any{"current_secret": secret}, admin), http.StatusOK)
		newSecret := strOf(rot["client_secret"])
		if newSecret == "" || newSecret == secret {
			t.Fatalf("rotate: %v", rot)
		}
		assertOAuthError(t, s.clientCC(t, "e2e-life", secret), http.StatusUnauthorized, "invalid_client")
		mustTokens(t, s.clientCC(t, "e2e-life", newSecret), false) // request 2

		t.Run("per-client rate limit", func(t *testing.T) {
			var last *Response
			for i := 0; i < perMinute+2; i++ {
				last = s.clientCC(t, "e2e-life", newSecret)
				if last.Status == http.StatusTooManyRequests {
					break
				}
			}
			if last.Status != http.StatusTooManyRequests {
				t.Fatalf("no 429 from the per-client rate limit: %s", last)
			}
			assertOAuthError(t, last, http.StatusTooManyRequests, "rate_limit_exceeded")
			ra, err := strconv.Atoi(last.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 61 {
				t.Errorf("%s: Retry-After %q, want 1..61 seconds (a minute and one slot)", last, last.Header.Get("Retry-After"))
			}
			rl := expect(t, s.get(t, pathClients+"/e2e-life/rate-limit", admin), http.StatusOK)
			if rl["is_rate_limited"] != true || num(t, rl["per_minute_limit"], "per_minute_limit") != perMinute ||
				num(t, rl["per_minute_remaining"], "per_minute_remaining") != 0 {
				t.Errorf("rate-limit after exhausting the minute: %v", rl)
			}
		})

		// Delete: the token issued before stops working on the next
		// request.
		if r := s.introspect(t, tok.AccessToken, tok.AccessToken); r.Status == http.StatusUnauthorized {
			t.Fatalf("%s: the client's token was refused before the delete", r)
		}
		expect(t, s.call(t, http.MethodDelete, pathClients+"/e2e-life", nil, admin), http.StatusNoContent)
		s.assertBearerRejected(t, tok.AccessToken)
		assertInactive(t, s.introspect(t, admin, tok.AccessToken))
		assertOAuthError(t, s.clientCC(t, "e2e-life", newSecret), http.StatusUnauthorized, "invalid_client")
		expect(t, s.get(t, pathClients+"/e2e-life", admin), http.StatusNotFound)
	})
}

// TestSessionDeleteAcrossInstances: two instances share PostgreSQL and
// Redis; deleting a session on one makes its access token fail on the very
// next request there, and on the other within the revocation feed's bound
// (REVOCATION_FEED_MAX_LAG_MS, 1 s: docs/architecture.md, "Revocation
// feed").
func TestSessionDeleteAcrossInstances(t *testing.T) {
	t.Parallel()
	b := sharedBackend(t)
	env := b.env(t, nil)
	s1 := startServer(t, env)
	requireRoute(t, s1, http.MethodGet, pathSessions)
	s1.createAdmin(t, adminUser, adminEmail, strongPassword)
	s2 := startServer(t, s1.Env) // same database, Redis prefix and JWT key

	user := s1.login(t, adminUser, strongPassword, "")
	other := s2.login(t, adminUser, strongPassword, "")
	for _, s := range []*Server{s1, s2} {
		l := expect(t, s.get(t, pathSessions, user.AccessToken), http.StatusOK)
		if num(t, l["total"], "total") != 2 {
			t.Fatalf("%s: sessions %v, want 2", s.URL, l)
		}
	}
	expect(t, s1.call(t, http.MethodDelete, pathSessions+"/"+*user.SessionID, nil, other.AccessToken), http.StatusOK)
	assertInvalidToken(t, s1.get(t, pathSessions, user.AccessToken))
	revokedWithinFeedBound(t, s2, user.AccessToken)
	for _, s := range []*Server{s2, s1} {
		assertInvalidToken(t, s.get(t, pathSessions, user.AccessToken))
		expect(t, s.get(t, pathSessions, other.AccessToken), http.StatusOK)
	}
	assertOAuthError(t, s2.refresh(t, user.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")

	// DELETE / on instance 2 ends the rest, seen by instance 1 within the
	// bound.
	all := expect(t, s2.call(t, http.MethodDelete, pathSessions, nil, other.AccessToken), http.StatusOK)
	if num(t, all["sessions_terminated"], "sessions_terminated") != 1 {
		t.Errorf("delete all: %v", all)
	}
	revokedWithinFeedBound(t, s1, other.AccessToken)
	assertInvalidToken(t, s1.get(t, pathSessions, other.AccessToken))
}

// revokedWithinFeedBound waits until s refuses token, failing after the
// revocation feed's bound (REVOCATION_FEED_MAX_LAG_MS, 1 s), and logs how
// long it took.
func revokedWithinFeedBound(t *testing.T, s *Server, token string) {
	t.Helper()
	start := time.Now()
	testwait.Until(t, time.Second, "the other instance to refuse a revoked token", func() bool {
		return s.get(t, pathSessions, token).Status == http.StatusUnauthorized
	})
	t.Logf("revoked token refused by %s %v after the revocation returned", s.URL, time.Since(start))
}

// TestAdminFiguresE2E: three failed logins show as three in
// security/events, in reports/usage and on the dashboard.
func TestAdminFiguresE2E(t *testing.T) {
	eachAdminServer(t, nil, []route{get(pathAdmin + "/security/events")}, func(t *testing.T, s *Server, adminID string) {
		admin := s.login(t, adminUser, strongPassword, "").AccessToken
		for range 3 {
			assertOAuthError(t, s.tryLogin(t, adminUser, "Wrong-Passw0rd!-e2e", ""), http.StatusBadRequest, "invalid_grant")
		}
		var ev, rep, dash map[string]any
		deadline := time.Now().Add(10 * time.Second)
		for {
			ev = expect(t, s.get(t, pathAdmin+"/security/events?event_type=login.failure&user_id="+adminID, admin), http.StatusOK)
			if num(t, ev["total"], "total") >= 3 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // the audit writer flushes every 100 ms
		}
		if num(t, ev["total"], "security events total") != 3 {
			t.Errorf("security events: %v, want 3 failed logins", ev)
		}
		rep = expect(t, s.get(t, pathAdmin+"/reports/usage?days=1", admin), http.StatusOK)
		auth := rep["authentication"].(map[string]any)
		if num(t, auth["failed_logins"], "failed_logins") != 3 || num(t, auth["logins"], "logins") != 1 {
			t.Errorf("usage report: %v, want 3 failed logins and 1 login", rep)
		}
		if ti := rep["tokens_issued"].(map[string]any); num(t, ti["password"], "password") != 1 {
			t.Errorf("tokens issued: %v", ti)
		}
		dash = expect(t, s.get(t, pathAdmin+"/dashboard/stats", admin), http.StatusOK)
		da := dash["authentication"].(map[string]any)
		if num(t, da["failed_logins_today"], "failed_logins_today") != 3 || num(t, da["total_logins_today"], "total_logins_today") != 1 ||
			num(t, da["active_sessions"], "active_sessions") != 1 {
			t.Errorf("dashboard: %v", dash)
		}
		h := expect(t, s.get(t, pathAdmin+"/system/health", admin), http.StatusOK)
		comps := h["components"].(map[string]any)
		want := []string{"database", "cache"}
		for _, c := range want {
			m, _ := comps[c].(map[string]any)
			if m["status"] != "healthy" || m["latency_ms"] == nil {
				t.Errorf("system health %s: %v", c, comps)
			}
		}
	})
}

// TestAuditFlushedOnSIGTERM: a burst of audited requests, SIGTERM right
// after, and every event is in the database (counted after a restart).
func TestAuditFlushedOnSIGTERM(t *testing.T) {
	eachAdminServer(t, nil, []route{get(pathAdmin + "/audit/activity")}, func(t *testing.T, s *Server, _ string) {
		const n = 150
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r := s.clientCC(t, fmt.Sprintf("burst-%d", i), "no-such-secret")
				if r.Status != http.StatusUnauthorized {
					t.Errorf("%s: want 401", r)
				}
			}()
		}
		wg.Wait()
		s.stop(t) // SIGTERM at once; exit status 0 is checked
		s2 := startServer(t, s.Env)
		admin := s2.login(t, adminUser, strongPassword, "").AccessToken
		r := expect(t, s2.get(t, pathAdmin+"/audit/activity?action=client.auth_failure&per_page=1", admin), http.StatusOK)
		if got := num(t, r["total"], "total"); got != n {
			t.Errorf("%d client.auth_failure events after SIGTERM, want %d", got, n)
		}
	})
}

// TestDocsPagesRenderInChromium: the Swagger UI and ReDoc pages, served by
// the real binary from embedded assets, render the API's title and routes
// in headless Chromium (no network beyond the server), without an error
// or warning box (Swagger UI shows one, for example, for a
// jsonSchemaDialect it does not support) and without a message on the
// browser console.
func TestDocsPagesRenderInChromium(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	chromium := requireChromium(t)
	const title = "Permiso E2E Docs Title"
	s := startServer(t, b.env(t, map[string]string{"APP_NAME": title}))
	requireRoute(t, s, http.MethodGet, "/openapi.json")
	for _, tc := range []struct {
		page string
		// rendered is markup only a rendered operation has.
		rendered string
		// failures are markup and texts of the UI's error and warning
		// boxes.
		failures []string
	}{
		{"/docs", `class="opblock-summary`, []string{`class="errors-wrapper"`, `class="errors"`, `class="version-pragma`,
			"Unable to render this definition", "Failed to load API definition", "Could not render", "Parser error"}},
		{"/redoc", `operation-type post"`, []string{"Oops... ReDoc failed to render", "Something went wrong", "Error downloading"}},
	} {
		t.Run(strings.TrimPrefix(tc.page, "/"), func(t *testing.T) {
			t.Parallel()
			dom, console := renderDOM(t, chromium, s.URL+tc.page)
			// Only what the UI rendered counts, not the page's <title>.
			if i := strings.Index(dom, "<body"); i >= 0 {
				dom = dom[i:]
			}
			if !strings.Contains(dom, title) {
				t.Errorf("%s: rendered page does not show the title %q:\n%.3000s", tc.page, title, dom)
			}
			if !strings.Contains(dom, "/service-clients/{client_id}/rotate-secret") && !strings.Contains(dom, "Rotate the client secret") {
				t.Errorf("%s: rendered page shows no route:\n%.3000s", tc.page, dom)
			}
			if !strings.Contains(dom, tc.rendered) {
				t.Errorf("%s: rendered page has no %s: the operations were not rendered", tc.page, tc.rendered)
			}
			for _, f := range tc.failures {
				if i := strings.Index(dom, f); i >= 0 {
					t.Errorf("%s: the page shows an error or a warning (%s): %.600s", tc.page, f, dom[i:])
				}
			}
			for _, line := range console {
				t.Errorf("%s: browser console: %s", tc.page, line)
			}
		})
	}
}

// redocLogo is the one console message the ReDoc page may log: ReDoc
// 2.x always shows its vendor's logo from a CDN, which the page's
// Content-Security-Policy blocks (no request leaves for it); the image
// then hides itself.
const redocLogo = "https://cdn.redoc.ly/redoc/logo-mini.svg' violates the following Content Security Policy"

// renderDOM loads url in headless Chromium, lets its scripts run, and
// returns the serialized DOM and what the page wrote to the browser
// console (messages, uncaught exceptions, Content-Security-Policy
// violations), but the ReDoc logo's.
func renderDOM(t *testing.T, chromium, url string) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000",
		"--enable-logging=stderr", "--v=0", "--dump-dom", url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, errb.String())
	}
	var console []string
	for _, line := range strings.Split(errb.String(), "\n") {
		// Chromium logs each console message as INFO:CONSOLE.
		if strings.Contains(line, ":CONSOLE") && !strings.Contains(line, redocLogo) {
			console = append(console, line)
		}
	}
	return out.String(), console
}

// TestCacheInvalidationAcrossInstances: two instances share PostgreSQL
// and Redis and keep users and clients in their in-process caches
// (docs/caching.md), here for ten minutes (CACHE_LOCAL_TTL=600), so only the
// invalidation through Redis can explain what follows: taking a user's
// admin role away, and disabling a service client, on one instance is
// seen by the other at once (within the few milliseconds a pub/sub message takes; the
// test polls for up to 5 s to stay robust on a loaded machine).
func TestCacheInvalidationAcrossInstances(t *testing.T) {
	t.Parallel()
	b := sharedBackend(t)
	env := b.env(t, map[string]string{"CACHE_LOCAL_TTL": "600"})
	s1 := startServer(t, env)
	requireRoute(t, s1, http.MethodGet, pathSessions)
	s1.createAdmin(t, adminUser, adminEmail, strongPassword)
	s2 := startServer(t, s1.Env)
	admin := s1.login(t, adminUser, strongPassword, "").AccessToken

	eventually := func(what string, ok func() bool) {
		t.Helper()
		testwait.Until(t, 5*time.Second, "instance 2 to stop serving a stale copy: "+what, ok)
	}

	// A user made an administrator, cached on instance 2 by its bearer
	// checks; taking the role away on instance 1 (which revokes nothing:
	// admin rights are read from the current user record) ends its admin
	// access on instance 2.
	uid := s1.register(t, "cara", "cara@example.com", strongPassword)
	roleIDs := func(name string) []string {
		for _, r := range expect(t, s1.get(t, apiPrefix+"/roles", admin), http.StatusOK)["roles"].([]any) {
			if m := r.(map[string]any); m["name"] == name {
				return []string{m["id"].(string)}
			}
		}
		t.Fatalf("no role %q", name)
		return nil
	}
	expect(t, s1.call(t, http.MethodPut, apiPrefix+"/users/"+uid+"/roles", map[string]any{"role_ids": roleIDs("admin")}, admin), http.StatusOK)
	tok := s2.login(t, "cara", strongPassword, "").AccessToken
	expect(t, s2.get(t, apiPrefix+"/users", tok), http.StatusOK)
	expect(t, s1.call(t, http.MethodPut, apiPrefix+"/users/"+uid+"/roles", map[string]any{"role_ids": roleIDs("user")}, admin), http.StatusOK)
	eventually("admin role taken away on instance 1", func() bool {
		return s2.get(t, apiPrefix+"/users", tok).Status == http.StatusForbidden
	})
	expect(t, s2.get(t, apiPrefix+"/users/me", tok), http.StatusOK) // still a valid user

	// A service client, cached on instance 2 by client authentication and
	// by the bearer checks of its tokens.
	id, secret := s1.createClient(t, admin, "cache-e2e", 300, "read:profile")
	issue := func() *Response {
		return s2.postForm(t, pathToken, url.Values{"grant_type": {"client_credentials"}}, &[2]string{id, secret})
	}
	svc := expect(t, issue(), http.StatusOK)["access_token"].(string)
	s2.assertBearerAccepted(t, svc)
	expect(t, s1.call(t, http.MethodPut, pathClients+"/"+id, map[string]any{"is_active": false}, admin), http.StatusOK)
	eventually("a client disabled on instance 1 (token endpoint)", func() bool {
		return issue().Status == http.StatusUnauthorized
	})
	eventually("a client disabled on instance 1 (bearer check)", func() bool {
		return s2.introspect(t, svc, svc).Status == http.StatusUnauthorized
	})
}
