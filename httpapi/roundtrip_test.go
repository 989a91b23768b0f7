package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/permiso/permiso"

	"github.com/permiso/permiso/internal/testredis"
)

// TestOneRedisRoundTrip shows at most one Redis round trip per request
// (docs/abuse-resistance.md) on the real server over a real Redis: a
// client-credentials token request (RATE_LIMIT_API,
// RATE_LIMIT_SERVICE_TOKEN and the client's two limits) makes exactly one;
// a bearer read and an introspection by a client or by a bearer make at
// most one and no single command: revocations are answered from the
// memory of the revocation feed (docs/architecture.md, "Revocation
// feed") and RATE_LIMIT_API from the instance's lease, which a round trip
// renews now and then (docs/abuse-resistance.md, "Leases"). Every limit
// was counted.
func TestOneRedisRoundTrip(t *testing.T) {
	rc := hotRedis(t)
	t.Parallel()
	// Only the requests' own commands count: the revocation feed reads
	// and resyncs in the background on the same client, and no request
	// waits for that.
	calls := &testredis.RoundTrips{Only: testredis.Marked}
	rc.Universal().AddHook(calls)
	e := newHotEnv(t, rc, 50)
	userToken := e.login(t).AccessToken

	requests := []struct {
		name    string
		request func() *http.Request
		// clientRemaining is the RateLimit-Remaining header after the n-th
		// request (1-based) when the client's own limit is the tightest.
		clientRemaining func(n int) int
		// exact: exactly one pipeline, else at most one.
		exact bool
	}{
		{"client credentials", e.clientCredentials, func(n int) int { return 50 - n }, true},
		{"bearer read", func() *http.Request { return e.bearerRead(userToken) }, nil, false},
		{"introspection by a client", func() *http.Request { return e.introspect(userToken) }, nil, false},
		{"introspection by a bearer", func() *http.Request { return e.introspectAsBearer(userToken, userToken) }, nil, false},
	}
	for _, rq := range requests {
		e.send(rq.request()) // the first call may load the limiter script
		var apiBefore int
		for n := 2; n <= 4; n++ {
			calls.Reset()
			req := rq.request()
			w := e.send(req.WithContext(testredis.Mark(req.Context())))
			if w.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", rq.name, w.Code, w.Body)
			}
			if s, p := calls.Single.Load(), calls.Pipelines.Load(); s != 0 || p > 1 || (rq.exact && p != 1) {
				t.Errorf("%s: %d single Redis commands and %d pipelines, want one pipeline only (exact %v)", rq.name, s, p, rq.exact)
			}
			got := w.Header().Get("RateLimit-Remaining")
			if rq.clientRemaining != nil {
				if got != strconv.Itoa(rq.clientRemaining(n)) {
					t.Errorf("%s #%d: RateLimit-Remaining %q, want %d", rq.name, n, got, rq.clientRemaining(n))
				}
				continue
			}
			// Otherwise the per-IP limits are the tightest: they go down
			// by one per request, so they were counted in that pipeline.
			rem, err := strconv.Atoi(got)
			if err != nil {
				t.Fatalf("%s: RateLimit-Remaining %q", rq.name, got)
			}
			if apiBefore != 0 && rem != apiBefore-1 {
				t.Errorf("%s #%d: RateLimit-Remaining %d after %d", rq.name, n, rem, apiBefore)
			}
			apiBefore = rem
		}
	}
	w := e.send(e.introspect(userToken))
	var m struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || !m.Active {
		t.Errorf("introspection answer: %s", w.Body)
	}
}

// TestClientLimitsLeased: over Redis, without per-IP limits (RATE_LIMIT_API
// and RATE_LIMIT_SERVICE_TOKEN unset), a busy service client's minute and
// hour limits are counted in leases (docs/abuse-resistance.md, "Leases"):
// fewer round trips than tokens; the headers name the minute limit with
// its count and period, Remaining below it; and once the client is
// disabled its lease admits nothing: the client is checked before its
// limits, so the next request is invalid_client.
func TestClientLimitsLeased(t *testing.T) {
	rc := hotRedis(t)
	t.Parallel()
	calls := &testredis.RoundTrips{Only: testredis.Marked}
	rc.Universal().AddHook(calls)
	e := newHotEnvLimits(t, rc, 6000, RateLimits{})
	const tokens = 40
	for range tokens {
		req := e.clientCredentials()
		w := e.send(req.WithContext(testredis.Mark(req.Context())))
		if w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		rem, err := strconv.Atoi(w.Header().Get("RateLimit-Remaining"))
		if p := w.Header().Get("RateLimit-Policy"); p != "6000;w=60" || err != nil || rem < 0 || rem >= 6000 {
			t.Fatalf("RateLimit-Policy %q, RateLimit-Remaining %q; want 6000;w=60 and fewer than 6000 remaining", p, w.Header().Get("RateLimit-Remaining"))
		}
	}
	if n := calls.Single.Load() + calls.Pipelines.Load(); n >= tokens {
		t.Errorf("%d Redis round trips for %d tokens; want fewer (leased)", n, tokens)
	} else {
		t.Logf("%d Redis round trips for %d tokens", n, tokens)
	}

	c, err := e.store.GetServiceClientByClientID(t.Context(), hotClient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateServiceClient(t.Context(), c.ID, func(c *permiso.ServiceClient) error {
		c.IsActive = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if w := e.send(e.clientCredentials()); w.Code != http.StatusUnauthorized {
		t.Errorf("disabled client: %d %s; want 401 invalid_client", w.Code, w.Body)
	}
}
