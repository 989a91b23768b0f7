package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/cache"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/metrics"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// hotEnv is the server wired as cmd/permiso wires it for the hot paths of
// docs/architecture.md, "Performance by design" (client credentials, bearer reads, introspection, refresh): real
// SQLite behind the in-process cache, an HS256 signer, every per-IP limit enabled, and the limiter,
// revocations and checker either in process or in a real Redis under a
// key prefix of its own. It has one user (hotUser / hotPassword) and one
// service client (hotClient / secret) with limits of its own.
type hotEnv struct {
	h      http.Handler
	secret string
	redis  *redis.Client // nil in process
	store  *cache.Store
}

const (
	hotUser     = "hot-user"
	hotPassword = "Tq8#vLm2!pZr-hot-Kx4"
	hotClient   = "hot-client"
)

// hotRedis opens PERMISO_TEST_REDIS_URL, or skips.
func hotRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	rc, err := redis.Open(testdb.RedisURL(tb), redis.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rc.Close() })
	return rc
}

// newHotEnv builds the environment; rc nil means in process. Client
// limits are high enough for benchmarks (clientPerMinute).
func newHotEnv(tb testing.TB, rc *redis.Client, clientPerMinute int) *hotEnv {
	tb.Helper()
	high := permiso.Limit{Count: 1 << 30, Period: time.Minute}
	return newHotEnvLimits(tb, rc, clientPerMinute, RateLimits{API: high, Login: high, Refresh: high, ServiceToken: high, Register: high})
}

// newHotEnvLimits is newHotEnv with the per-IP limits ipLimits (a zero
// RateLimits disables them all, as scripts/bench.sh runs the server).
func newHotEnvLimits(tb testing.TB, rc *redis.Client, clientPerMinute int, ipLimits RateLimits) *hotEnv {
	tb.Helper()
	return newHotEnvServed(tb, rc, clientPerMinute, ipLimits, false)
}

// newServedEnv is newHotEnv as scripts/bench.sh serves it: the Prometheus
// metrics on (ENABLE_METRICS=true), LOG_LEVEL=warning, and the per-IP
// limits off (RATE_LIMIT_API and the others empty).
func newServedEnv(tb testing.TB, rc *redis.Client) *hotEnv {
	tb.Helper()
	return newHotEnvServed(tb, rc, 1<<30, RateLimits{}, true)
}

func newHotEnvServed(tb testing.TB, rc *redis.Client, clientPerMinute int, ipLimits RateLimits, served bool) *hotEnv {
	tb.Helper()
	ctx := context.Background()
	db := testdb.SQLite(tb)
	// Behind the in-process cache, as cmd/permiso wires it.
	store, err := cache.New(ctx, db, cache.Options{TTL: 30 * time.Second, Bus: cache.NewLocalBus()})
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() }) // closes db too
	signer := testwire.HS256(tb, "0123456789abcdef0123456789abcdef-hotpath", "permiso-test", nil)
	var (
		limiter     permiso.RateLimiter     = inprocess.NewLimiter()
		revocations permiso.RevocationStore = inprocess.NewRevocations()
		checks      permiso.Checker
	)
	if rc != nil {
		prefix := redisTestPrefix(tb, rc, "hot")
		rl, rr := redis.NewLimiter(rc, prefix+"rate:"), redis.NewRevocations(rc, prefix+"token:")
		// With the revocation feed, as serve runs it (docs/architecture.md,
		// "Revocation feed").
		tb.Cleanup(rr.WithFeed(redis.FeedOptions{}).StartFeed())
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := rr.WaitFeed(wctx); err != nil {
			tb.Fatal(err)
		}
		limiter, revocations, checks = rl, rr, redis.NewChecker(rl, rr)
	}
	hasher := testwire.Hasher()
	svc := oauth2.NewService(oauth2.Config{Issuer: "permiso-test"}, oauth2.Deps{
		Users: store, Clients: store, Tokens: store, Sessions: store, Hasher: hasher, Signer: signer,
		Revocations: revocations, Limiter: limiter, Checks: checks,
		Lockout: inprocess.NewLockout(5, time.Minute),
	})
	opts := testOptions()
	opts.RateLimits = ipLimits
	deps := Deps{Options: opts, Auth: svc, Keys: signer, Store: store, Limiter: limiter}
	if served {
		m := metrics.New()
		deps.Options.MetricsPath = "/metrics"
		deps.Metrics, deps.Observe, deps.RateLimited = m.Handler(), m.ObserveHTTP, m.RateLimited
		deps.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
		// The account service of GET /users/me.
		ident := identity.New(identity.Config{}, identity.Deps{Store: store, Hasher: hasher, Sessions: svc,
			Lockout: svc, ClientTokens: svc, Logger: deps.Logger})
		tb.Cleanup(ident.Close)
		deps.Identity = ident
	}
	h := NewServer(deps)

	activeUser(tb, store, hotUser, testwire.Hash(tb, hasher, hotPassword), false)
	secret, secretHash := permiso.NewClientSecret()
	if _, err := store.CreateServiceClient(ctx, permiso.ServiceClient{ClientID: hotClient, SecretHash: secretHash, Name: "hot",
		ClientType: "confidential", IsActive: true, RateLimitPerMinute: clientPerMinute, RateLimitPerHour: 1 << 30}, nil); err != nil {
		tb.Fatal(err)
	}
	return &hotEnv{h: h, secret: secret, redis: rc, store: store}
}

// send serves r from the client address 127.0.0.1.
func (e *hotEnv) send(r *http.Request) *httptest.ResponseRecorder {
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *hotEnv) clientCredentials() *http.Request {
	r := formRequest("/api/v1/auth/token", url.Values{"grant_type": {"client_credentials"}})
	r.SetBasicAuth(hotClient, e.secret)
	return r
}

func (e *hotEnv) bearerRead(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// bearerMe is the bearer scenario of permiso-load: GET /users/me.
func (e *hotEnv) bearerMe(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/users/me", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func (e *hotEnv) introspect(token string) *http.Request {
	r := formRequest("/api/v1/auth/introspect", url.Values{"token": {token}})
	r.SetBasicAuth(hotClient, e.secret)
	return r
}

// introspectAsBearer introspects token with bearer as the caller's
// credential (RFC 7662 §2.1).
func (e *hotEnv) introspectAsBearer(bearer, token string) *http.Request {
	r := formRequest("/api/v1/auth/introspect", url.Values{"token": {token}})
	r.Header.Set("Authorization", "Bearer "+bearer)
	return r
}

func refreshRequest(token string) *http.Request {
	return formRequest("/api/v1/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
}

// login runs the password grant for the environment's user.
func (e *hotEnv) login(tb testing.TB) oauth2.TokenResponse {
	tb.Helper()
	return tokenResponse(tb, e.send(formRequest("/api/v1/auth/token",
		url.Values{"grant_type": {"password"}, "username": {hotUser}, "password": {hotPassword}})), "token request")
}
