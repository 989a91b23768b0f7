package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/memory"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
	"github.com/permiso/permiso/sqlite"
)

// redisCalls counts what a Redis client sends: single commands and
// pipelines.
type redisCalls struct{ single, pipelines atomic.Int64 }

func (h *redisCalls) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *redisCalls) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.single.Add(1)
		return next(ctx, cmd)
	}
}

func (h *redisCalls) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

func (h *redisCalls) reset() { h.single.Store(0); h.pipelines.Store(0) }

// TestOneRedisRoundTrip shows SPEC §7 on the real server over a real
// Redis: a client-credentials token request (RATE_LIMIT_API,
// RATE_LIMIT_SERVICE_TOKEN and the client's two limits), a bearer read
// (RATE_LIMIT_API and the token's three revocation lookups) and an
// introspection by a client (RATE_LIMIT_API and the introspected token's
// revocation lookups) each make exactly one Redis round trip, and every
// limit in it was counted.
func TestOneRedisRoundTrip(t *testing.T) {
	redisURL := os.Getenv("PERMISO_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("PERMISO_TEST_REDIS_URL is not set")
	}
	t.Parallel()
	ctx := t.Context()
	rc, err := redis.Open(redisURL, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	prefix := "permiso-test:rt:" + rand.Text()[:12] + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := rc.Universal().Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rc.Universal().Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("cleaning up %s*: %v", prefix, err)
		}
	})
	calls := &redisCalls{}
	rc.Universal().AddHook(calls)

	db, err := sqlite.Open(ctx, sqlite.Memory, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	signer, err := jwt.New(ctx, jwt.Options{Algorithm: jwt.HS256, Secret: []byte("0123456789abcdef0123456789abcdef-roundtrip"), Issuer: "permiso-test"})
	if err != nil {
		t.Fatal(err)
	}
	limiter := redis.NewLimiter(rc, prefix+"rate:")
	revocations := redis.NewRevocations(rc, prefix+"token:")
	hasher := argon2id.New(argon2id.Options{Params: argon2id.TestParams()})
	svc := oauth2.NewService(oauth2.Config{Issuer: "permiso-test"}, oauth2.Deps{
		Users: db, Clients: db, Tokens: db, Sessions: db, Hasher: hasher, Signer: signer,
		Revocations: revocations, Limiter: limiter, Checks: redis.NewChecker(limiter, revocations),
		Lockout: memory.NewLockout(5, time.Minute),
	})
	opts := testOptions()
	perMinute := func(n int) permiso.Limit { return permiso.Limit{Count: n, Period: time.Minute} }
	opts.RateLimits = RateLimits{API: perMinute(1000), Login: perMinute(100), Refresh: perMinute(100),
		ServiceToken: perMinute(100), Register: perMinute(100)}
	h := NewServer(Deps{Options: opts, Auth: svc, Keys: signer, Store: db, Limiter: limiter})

	// A user and a service client with limits of its own.
	const password = "Tq8#vLm2!pZr-rt-Kx4"
	hash, err := hasher.Hash(ctx, password)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := db.CreateUser(ctx, permiso.User{Username: "rt-user", Email: "rt@example.com", PasswordHash: hash,
		IsActive: true, IsVerified: true, PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	secret, secretHash := oauth2.NewClientSecret()
	if _, err := db.CreateServiceClient(ctx, permiso.ServiceClient{ClientID: "rt-client", SecretHash: secretHash, Name: "rt",
		ClientType: "confidential", IsActive: true, RateLimitPerMinute: 50, RateLimitPerHour: 500}, nil); err != nil {
		t.Fatal(err)
	}

	send := func(r *http.Request) *httptest.ResponseRecorder {
		r.RemoteAddr = "127.0.0.1:40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	form := func(path string, v url.Values) *http.Request {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	token := func(w *httptest.ResponseRecorder) string {
		t.Helper()
		var tr oauth2.TokenResponse
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &tr) != nil || tr.AccessToken == "" {
			t.Fatalf("token request: %d %s", w.Code, w.Body)
		}
		return tr.AccessToken
	}
	userToken := token(send(form("/api/v1/auth/token", url.Values{"grant_type": {"password"}, "username": {"rt-user"}, "password": {password}})))

	requests := []struct {
		name    string
		request func() *http.Request
		// remaining is the RateLimit-Remaining header after the n-th
		// request (1-based): the tightest limit, which must have counted.
		remaining func(n int) int
	}{
		{"client credentials", func() *http.Request {
			r := form("/api/v1/auth/token", url.Values{"grant_type": {"client_credentials"}})
			r.SetBasicAuth("rt-client", secret)
			return r
		}, func(n int) int { return 50 - n }}, // the client's 50/minute
		{"bearer read", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
			r.Header.Set("Authorization", "Bearer "+userToken)
			return r
		}, nil},
		{"introspection by a client", func() *http.Request {
			r := form("/api/v1/auth/introspect", url.Values{"token": {userToken}})
			r.SetBasicAuth("rt-client", secret)
			return r
		}, nil},
	}
	for _, rq := range requests {
		send(rq.request()) // the first call may load the limiter script
		var apiBefore int
		for n := 2; n <= 4; n++ {
			calls.reset()
			w := send(rq.request())
			if w.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", rq.name, w.Code, w.Body)
			}
			if s, p := calls.single.Load(), calls.pipelines.Load(); s != 0 || p != 1 {
				t.Errorf("%s: %d single Redis commands and %d pipelines, want one pipeline only", rq.name, s, p)
			}
			got := w.Header().Get("RateLimit-Remaining")
			if rq.remaining != nil {
				if got != strconv.Itoa(rq.remaining(n)) {
					t.Errorf("%s #%d: RateLimit-Remaining %q, want %d", rq.name, n, got, rq.remaining(n))
				}
				continue
			}
			// RATE_LIMIT_API is the tightest here: it goes down by one
			// per request, so it was counted in that one pipeline.
			rem := atoi(t, got)
			if apiBefore != 0 && rem != apiBefore-1 {
				t.Errorf("%s #%d: RateLimit-Remaining %d after %d", rq.name, n, rem, apiBefore)
			}
			apiBefore = rem
		}
	}
	if res, err := introspectActive(t, send, form, secret, userToken); err != nil || !res {
		t.Errorf("introspection answer: active=%v %v", res, err)
	}
}

func introspectActive(t *testing.T, send func(*http.Request) *httptest.ResponseRecorder, form func(string, url.Values) *http.Request, secret, tok string) (bool, error) {
	r := form("/api/v1/auth/introspect", url.Values{"token": {tok}})
	r.SetBasicAuth("rt-client", secret)
	w := send(r)
	var m struct {
		Active bool `json:"active"`
	}
	err := json.Unmarshal(w.Body.Bytes(), &m)
	return m.Active, err
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}
