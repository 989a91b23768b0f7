package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/permiso/permiso/internal/testredis"
)

// Benchmarks of the hot paths (docs/benchmarks.md), in process (no network), as
// cmd/permiso wires them: b.Run("memory") with the in-process limiter and
// revocations, b.Run("redis") with PERMISO_TEST_REDIS_URL. BenchmarkLive
// (live_test.go) is the bare-handler baseline of the same run; compare the
// ns/op as ratios (docs/benchmarks.md). Nothing here asserts a time.

func benchHot(b *testing.B, run func(b *testing.B, e *hotEnv)) {
	b.Run("memory", func(b *testing.B) { run(b, newHotEnv(b, nil, 1<<30)) })
	b.Run("redis", func(b *testing.B) { run(b, newHotEnv(b, hotRedis(b), 1<<30)) })
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

func BenchmarkBearerRead(b *testing.B) {
	benchHot(b, func(b *testing.B, e *hotEnv) {
		tok := e.login(b).AccessToken
		loop(b, e, func() *http.Request { return e.bearerRead(tok) })
	})
}

func BenchmarkIntrospect(b *testing.B) {
	benchHot(b, func(b *testing.B, e *hotEnv) {
		tok := e.login(b).AccessToken
		loop(b, e, func() *http.Request { return e.introspect(tok) })
	})
}

// BenchmarkRefresh rotates one refresh-token chain: every iteration is a
// rotation (one short transaction) and a new access token.
func BenchmarkRefresh(b *testing.B) {
	benchHot(b, func(b *testing.B, e *hotEnv) {
		rt := e.login(b).RefreshToken
		b.ReportAllocs()
		for b.Loop() {
			var w *httptest.ResponseRecorder = e.send(refreshRequest(rt))
			rt = hotTokens(b, w).RefreshToken
		}
	})
}
