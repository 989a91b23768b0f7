package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/internal/testwait"
)

// Abuse resistance across instances (docs/abuse-resistance.md): rate limits and
// lockout held in one Redis by several `permiso serve` processes, CORS and
// the Host allow-list, and the failure policy when Redis goes away.

// rawResult is one response read without touching testing.T, for use from
// many goroutines.
type rawResult struct {
	status int
	header http.Header
	body   map[string]any
	err    error
}

// rawLogin sends a password grant from the client address ip (as a
// trusted proxy would report it in X-Forwarded-For: the test connects
// from loopback, which TRUSTED_PROXIES trusts by default).
func (s *Server) rawLogin(username, password, ip string) rawResult {
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, s.URL+pathToken, strings.NewReader(form.Encode()))
	if err != nil {
		return rawResult{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return rawResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	res := rawResult{status: resp.StatusCode, header: resp.Header, err: err}
	if err == nil {
		res.err = json.Unmarshal(b, &res.body)
	}
	return res
}

// TestSharedLimitsAcrossInstances runs three `permiso serve` processes
// against one PostgreSQL database and one Redis key space and shows that
// the rate limits and the lockout are the cluster's, not each process's:
//   - 50 concurrent wrong passwords for one username, spread over the
//     three (and over 50 client addresses, so the rate limit is not what
//     stops them), give exactly MAX_LOGIN_ATTEMPTS invalid_grant answers,
//     and for the rest 429 too_many_attempts (while those checks are in
//     flight) or 423 account_locked (once they locked), one lock,
//     MAX_LOGIN_ATTEMPTS counted failures;
//   - a locked nonexistent username behaves exactly like a locked real one;
//   - RATE_LIMIT_LOGIN=5/minute admits exactly 5 logins per minute from
//     one IP across the three together.
func TestSharedLimitsAcrossInstances(t *testing.T) {
	t.Parallel()
	pg, rd := os.Getenv("PERMISO_TEST_DATABASE_URL"), os.Getenv("PERMISO_TEST_REDIS_URL")
	if testing.Short() || pg == "" || rd == "" {
		t.Skip("needs PERMISO_TEST_DATABASE_URL and PERMISO_TEST_REDIS_URL (and not -short)")
	}
	env := provisionPostgresRedis(t, pg, rd)
	env["RATE_LIMIT_LOGIN"] = "5/minute"
	env["MAX_LOGIN_ATTEMPTS"] = "5"
	env["LOCKOUT_DURATION_MINUTES"] = "30"
	// The race-enabled binary hashes slowly: let the few verifications run
	// at once rather than wait for a slot (and give up with 503).
	env["PASSWORD_HASH_CONCURRENCY"] = "8"
	var servers []*Server
	for range 3 {
		servers = append(servers, startServer(t, env))
	}
	servers[0].createAdmin(t, adminUser, adminEmail, strongPassword)

	ghost := "ghost-" + randomHex(t, 4)
	lockedBodies := map[string]map[string]any{}
	for _, username := range []string{adminUser, ghost} {
		t.Run("Lockout/"+username, func(t *testing.T) {
			const n = 50
			results := make([]rawResult, n)
			var wg sync.WaitGroup
			start := time.Now()
			for i := range n {
				wg.Go(func() {
					ip := fmt.Sprintf("10.%d.%d.%d", len(username), i/250, i%250+1)
					results[i] = servers[i%3].rawLogin(username, "Wrong-Passw0rd!", ip)
				})
			}
			wg.Wait()
			counts := map[string]int{}
			for i, r := range results {
				if r.err != nil {
					t.Fatalf("attempt %d: %v", i, r.err)
				}
				key := strconv.Itoa(r.status) + " " + fmt.Sprint(r.body["error"])
				counts[key]++
				if r.status == http.StatusLocked {
					until, err := time.Parse(time.RFC3339, fmt.Sprint(r.body["locked_until"]))
					if err != nil || until.Before(start.Add(29*time.Minute)) || until.After(time.Now().Add(31*time.Minute)) {
						t.Errorf("attempt %d: locked_until %v, want about 30 minutes from now", i, r.body["locked_until"])
					}
				}
			}
			// The rest are refused without a password check: 429
			// too_many_attempts while the five checks are in flight, 423
			// once they have locked the key.
			refused := counts["423 account_locked"] + counts["429 too_many_attempts"]
			if counts["400 invalid_grant"] != 5 || refused != n-5 {
				t.Errorf("%d concurrent wrong passwords for %q over 3 instances: %v, want 5 400 invalid_grant and %d 423 account_locked or 429 too_many_attempts", n, username, counts, n-5)
			}
			// Locked: even the right password is refused, on every instance.
			for i, s := range servers {
				r := s.rawLogin(username, strongPassword, fmt.Sprintf("10.%d.200.%d", len(username), i+1))
				if r.status != http.StatusLocked {
					t.Errorf("right password while locked: %d %v, want 423", r.status, r.body)
					continue
				}
				delete(r.body, "request_id")
				lockedBodies[username] = r.body
			}
			// The shared lockout state: exactly MAX_LOGIN_ATTEMPTS failures.
			rdb := redisClient(t, rd)
			// The key is the SHA-256 of the username, never the username
			// (docs/abuse-resistance.md, "Lockout").
			sum := sha256.Sum256([]byte(username))
			key := env["CACHE_RATE_LIMIT_PREFIX"] + "lockout:" + hex.EncodeToString(sum[:])
			if n, err := rdb.HGet(t.Context(), key, "n").Result(); err != nil || n != "5" {
				t.Errorf("HGET %s n = %q, %v; want 5 counted failures", key, n, err)
			}
		})
	}
	// One login.locked audit event per lock (batched: poll briefly).
	t.Run("AuditEvents", func(t *testing.T) {
		conn, err := pgx.Connect(t.Context(), env["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var locks, failures int
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := conn.QueryRow(t.Context(), `SELECT
				count(*) FILTER (WHERE action = 'login.locked'),
				count(*) FILTER (WHERE action = 'login.failure' AND details->>'reason' IN ('invalid_password', 'unknown_user'))
				FROM audit_events`).Scan(&locks, &failures)
			if err != nil {
				t.Fatal(err)
			}
			if locks >= 2 && failures >= 10 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if locks != 2 || failures != 10 {
			t.Errorf("audit: %d login.locked, %d passwords checked; want 2 locks and 5 checks per username", locks, failures)
		}
	})
	// No enumeration: the lock of a nonexistent username looks exactly
	// like the lock of a real one.
	if len(lockedBodies) == 2 {
		var bodies []map[string]any
		for _, b := range lockedBodies {
			delete(b, "locked_until")
			bodies = append(bodies, b)
		}
		if !mapsEqualJSON(bodies[0], bodies[1]) {
			t.Errorf("locked real user %v, locked unknown user %v", bodies[0], bodies[1])
		}
	}

	t.Run("LoginRateLimit", func(t *testing.T) {
		// Logins for the username locked above: an admitted attempt is
		// answered 423 at once, without a password hash (the race-enabled
		// binary hashes slowly), and the lockout changes nothing. Sent
		// concurrently, so the count must also be atomic.
		const ip = "203.0.113.5"
		results := make([]rawResult, 9)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() { results[i] = servers[i%3].rawLogin(ghost, "Wrong-Passw0rd!", ip) })
		}
		wg.Wait()
		var admitted, limited int
		for i, r := range results {
			switch {
			case r.err != nil:
				t.Fatalf("login %d: %v", i, r.err)
			case r.status == http.StatusLocked && r.body["error"] == "account_locked":
				admitted++
			case r.status == http.StatusTooManyRequests && r.body["error"] == "rate_limit_exceeded":
				limited++
				if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 61 {
					t.Errorf("429 Retry-After %q", r.header.Get("Retry-After"))
				}
				if r.header.Get("RateLimit-Remaining") != "0" || r.header.Get("RateLimit-Limit") != "5" {
					t.Errorf("429 RateLimit headers %v", r.header)
				}
			default:
				t.Fatalf("login %d: %d %v", i, r.status, r.body)
			}
		}
		if admitted != 5 || limited != 4 {
			t.Errorf("9 logins from one IP over 3 instances: %d admitted, %d limited; want exactly 5 and 4", admitted, limited)
		}
		// Another IP is not affected.
		if r := servers[1].rawLogin(ghost, "Wrong-Passw0rd!", "203.0.113.6"); r.status != http.StatusLocked {
			t.Errorf("another IP: %d %v", r.status, r.body)
		}
	})

}

func redisClient(t *testing.T, rawURL string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisOutage kills the server's private Redis during the test: token
// requests get 503 temporarily_unavailable (never a token issued without
// the rate-limit and lockout checks), bearer checks fail closed, /health
// says unhealthy; when Redis is back the same process recovers on its own.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	srv := testredis.Start(t, 0)
	env := b.env(t, map[string]string{"REDIS_URL": "redis://" + srv.Addr + "/0"})
	s := startServer(t, env)
	requireRoute(t, s, http.MethodPost, pathToken)
	s.createAdmin(t, adminUser, adminEmail, strongPassword)
	tok := s.login(t, adminUser, strongPassword, "")
	s.assertBearerAccepted(t, tok.AccessToken)

	srv.Kill()
	killed := time.Now()
	for range 3 {
		r := s.tryLogin(t, adminUser, strongPassword, "")
		m := assertOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
		if m["access_token"] != nil || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: want no token and a Retry-After", r)
		}
	}
	r := s.refresh(t, tok.RefreshToken, "")
	assertOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	// Bearer checks answer from the revocation feed's memory until it is
	// older than REVOCATION_FEED_MAX_LAG_MS (1 s; docs/architecture.md,
	// "Revocation feed"), then fail closed.
	var last string
	testwait.Until(t, 5*time.Second, "bearer checks to fail closed with Redis down", func() bool {
		r := s.introspect(t, tok.AccessToken, tok.AccessToken)
		last = r.String()
		return r.Status == http.StatusServiceUnavailable
	})
	t.Logf("bearer checks fail closed %v after Redis was killed; last answer %s", time.Since(killed), last)
	if r := s.get(t, "/health", ""); r.Status != http.StatusServiceUnavailable {
		t.Errorf("%s: want 503 unhealthy", r)
	}

	srv.Restart(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.tryLogin(t, adminUser, strongPassword, "")
		if r.Status == http.StatusOK {
			mustTokens(t, r, true)
			break
		}
		if r.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("%s: no recovery after Redis came back", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := s.get(t, "/health", ""); r.Status != http.StatusOK {
		t.Errorf("%s: want healthy again", r)
	}
	if !strings.Contains(s.stderr.String(), "Redis unavailable") {
		t.Errorf("the outage was not logged")
	}
}

// TestCORSAndHosts: ALLOWED_ORIGINS, ALLOW_CREDENTIALS and ALLOWED_HOSTS
// through the real configuration (README, "Configuration").
func TestCORSAndHosts(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	s := startServer(t, b.env(t, map[string]string{
		"ALLOWED_ORIGINS": "https://app.example.com", "ALLOW_CREDENTIALS": "true",
		"ALLOWED_HOSTS": "127.0.0.1,*.example.com",
	}))
	r := s.do(t, request{method: http.MethodOptions, path: pathToken, header: map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization, content-type",
	}})
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		r.Header.Get("Access-Control-Allow-Headers") != "authorization, content-type" ||
		!slices.Contains(r.Header.Values("Vary"), "Origin") {
		t.Errorf("preflight: %s %v", r, r.Header)
	}
	r = s.do(t, request{method: http.MethodGet, path: "/health/live", header: map[string]string{"Origin": "https://evil.example.net"}})
	if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin: %s %v", r, r.Header)
	}
	// The API refuses unlisted hosts; the health endpoints answer any
	// (container health checks reach instances by address).
	for _, c := range []struct {
		path, host string
		want       int
	}{
		{"/", "api.example.com", 200}, {"/", "evil.example.net", 400},
		{"/health/live", "evil.example.net", 200}, {"/health", "10.1.2.3:8000", 200},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+c.path, nil)
		req.Host = c.host
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s with Host %s: %d, want %d", c.path, c.host, resp.StatusCode, c.want)
		}
	}
}
