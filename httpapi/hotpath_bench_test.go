package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/redis"
)

// Benchmarks of the hot paths (docs/benchmarks.md), in process (no network), as
// cmd/permiso wires them: b.Run("memory") with the in-process limiter and
// revocations, b.Run("redis") with PERMISO_TEST_REDIS_URL. BenchmarkLive
// (live_test.go) is the bare-handler baseline of the same run; compare the
// ns/op as ratios (docs/benchmarks.md). Nothing here asserts a time.

func benchHot(b *testing.B, run func(b *testing.B, e *hotEnv)) {
	benchOn(b, func(tb testing.TB, rc *redis.Client) *hotEnv { return newHotEnv(tb, rc, 1<<30) }, run)
}

// benchOn runs run on the environment env makes, in process ("memory")
// and with Redis ("redis").
func benchOn(b *testing.B, env func(testing.TB, *redis.Client) *hotEnv, run func(b *testing.B, e *hotEnv)) {
	b.Run("memory", func(b *testing.B) { run(b, env(b, nil)) })
	b.Run("redis", func(b *testing.B) { run(b, env(b, hotRedis(b))) })
}

// loop serves req() b.N times and fails on any other status than 200.
// Over Redis it also reports the Redis round trips (single commands and
// pipelines) the requests made, per request (redis-calls/op).
func loop(b *testing.B, e *hotEnv, req func() *http.Request) {
	var calls *testredis.RoundTrips
	if e.redis != nil {
		calls = &testredis.RoundTrips{Only: testredis.Marked}
		e.redis.Universal().AddHook(calls)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := req()
		if calls != nil {
			r = r.WithContext(testredis.Mark(r.Context()))
		}
		if w := e.send(r); w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		n++
	}
	if calls != nil && n > 0 {
		b.ReportMetric(float64(calls.Single.Load()+calls.Pipelines.Load())/float64(n), "redis-calls/op")
	}
}

// BenchmarkClientCredentials also runs over Redis without per-IP limits
// (redis-no-ip-limits), as scripts/bench.sh runs the server: then the
// client's own limits are the request's only shared check.
func BenchmarkClientCredentials(b *testing.B) {
	benchHot(b, func(b *testing.B, e *hotEnv) { loop(b, e, e.clientCredentials) })
	b.Run("redis-no-ip-limits", func(b *testing.B) {
		e := newHotEnvLimits(b, hotRedis(b), 1<<30, RateLimits{})
		loop(b, e, e.clientCredentials)
	})
}

func BenchmarkBearerRead(b *testing.B) { benchHot(b, withToken((*hotEnv).bearerRead)) }

func BenchmarkIntrospect(b *testing.B) { benchHot(b, withToken((*hotEnv).introspect)) }

// withToken serves req with the access token of a fresh login.
func withToken(req func(e *hotEnv, token string) *http.Request) func(b *testing.B, e *hotEnv) {
	return func(b *testing.B, e *hotEnv) {
		tok := e.login(b).AccessToken
		loop(b, e, func() *http.Request { return req(e, tok) })
	}
}

// BenchmarkRefresh rotates one refresh-token chain: every iteration is a
// rotation (one short transaction) and a new access token.
func BenchmarkRefresh(b *testing.B) {
	benchHot(b, func(b *testing.B, e *hotEnv) {
		rt := e.login(b).RefreshToken
		b.ReportAllocs()
		for b.Loop() {
			var w *httptest.ResponseRecorder = e.send(refreshRequest(rt))
			rt = tokenResponse(b, w, "token request").RefreshToken
		}
	})
}

// benchServed runs on newServedEnv, the configuration of scripts/bench.sh,
// on SQLite in process ("memory") and with Redis ("redis").
func benchServed(b *testing.B, run func(b *testing.B, e *hotEnv)) { benchOn(b, newServedEnv, run) }

// BenchmarkServedBearerMe is permiso-load's bearer scenario: GET /users/me
// with a user's access token.
func BenchmarkServedBearerMe(b *testing.B) { benchServed(b, withToken((*hotEnv).bearerMe)) }

// BenchmarkServedIntrospect is permiso-load's introspect scenario: a
// service client (HTTP Basic) introspects a user's access token.
func BenchmarkServedIntrospect(b *testing.B) { benchServed(b, withToken((*hotEnv).introspect)) }

// BenchmarkChain measures the middleware chain every route pays
// (docs/benchmarks.md, "The middleware chain"): "bare" calls a handler
// that answers 200 with no body directly; "served" sends the same request
// to the same handler registered as a public API route of the server
// configured as scripts/bench.sh runs it (newServedEnv, in process). The
// difference between the two is the chain: recovery, request id, client
// address, security headers, body limit, access log and metrics, routing,
// the query check and the route's limit batch.
func BenchmarkChain(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	r := httptest.NewRequest(http.MethodGet, "/api/v1/bench/bare", nil)
	b.Run("bare", func(b *testing.B) { loop(b, &hotEnv{h: bare}, func() *http.Request { return r }) })
	b.Run("served", func(b *testing.B) {
		e := newServedEnv(b, nil)
		e.h.(*server).handle("GET /api/v1/bench/bare", accessPublic, bare)
		loop(b, e, func() *http.Request { return r })
	})
}
