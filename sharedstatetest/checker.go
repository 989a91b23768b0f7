package sharedstatetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
)

// NewChecker returns a fresh checker for one test together with the rate
// limiter and revocation store it checks against (the same state: what
// the batch counts, the limiter sees, and what the store revokes, the
// batch reports), and the clock they run on. Like the other constructors
// it is called from parallel subtests and must isolate each call.
type NewChecker func(t *testing.T) (permiso.Checker, permiso.RateLimiter, permiso.RevocationStore, *testclock.Clock)

// RunChecker runs the conformance suite for permiso.Checker. A batch must
// decide exactly what the limiter and the revocation store decide one
// call at a time, so the rate-limiter and revocation suites run again with
// every Allow, AllowAll and IsRevoked sent through a one-check batch; then
// batches mixing several checks are compared with the stores' own answers.
func RunChecker(t *testing.T, newChecker NewChecker) {
	t.Helper()
	t.Run("RateLimiterThroughBatches", func(t *testing.T) {
		RunRateLimiter(t, func(t *testing.T) (permiso.RateLimiter, *testclock.Clock) {
			c, l, _, clock := newChecker(t)
			return BatchedLimiter(l, c), clock
		})
	})
	t.Run("RevocationThroughBatches", func(t *testing.T) {
		RunRevocation(t, func(t *testing.T) (permiso.RevocationStore, *testclock.Clock) {
			c, _, r, clock := newChecker(t)
			return BatchedRevocations(r, c), clock
		})
	})
	t.Run("MixedBatch", func(t *testing.T) {
		t.Parallel()
		c, l, r, clock := newChecker(t)
		testMixedBatch(t, c, l, r, clock)
	})
	t.Run("EmptyBatch", func(t *testing.T) {
		t.Parallel()
		c, _, _, _ := newChecker(t)
		c.Batch().Exec(context.Background())
	})
	t.Run("ConcurrentBatches", func(t *testing.T) {
		t.Parallel()
		c, _, _, _ := newChecker(t)
		testConcurrentBatches(t, c)
	})
	t.Run("LeasedWithinLimit", func(t *testing.T) {
		t.Parallel()
		c, _, _, _ := newChecker(t)
		LeasedWithinLimit(t, c)
	})
}

// LeasedWithinLimit sends many concurrent AllowLeased checks of one key
// through the checkers given (instances sharing one state) and requires
// what docs/abuse-resistance.md ("Leases") promises: never more admitted
// than the limit in its period, across them all, and the first request
// admitted. How many fewer were admitted (requests leased and not spent)
// is printed, not required.
func LeasedWithinLimit(t *testing.T, checkers ...permiso.Checker) {
	t.Helper()
	const workers, perWorker = 8, 150
	key := id("leased")
	lim := permiso.Limit{Count: 600, Period: time.Minute}
	first := checkers[0].Batch()
	res := first.AllowLeased(key, lim)
	first.Exec(context.Background())
	if r, err := res(); err != nil || !r.Allowed || r.Limit != lim.Count || r.Remaining >= lim.Count {
		t.Fatalf("first leased request = %+v, %v; want allowed under the limit", r, err)
	}
	allowed := atomic.Int64{}
	allowed.Add(1)
	var wg sync.WaitGroup
	for w := range workers {
		c := checkers[w%len(checkers)]
		wg.Go(func() {
			for range perWorker {
				b := c.Batch()
				res := b.AllowLeased(key, lim)
				b.Exec(context.Background())
				r, err := res()
				if err != nil {
					t.Error(err)
					return
				}
				if r.Allowed {
					allowed.Add(1)
					if r.Remaining >= lim.Count || r.Limit != lim.Count {
						t.Errorf("admitted with %+v", r)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	n := allowed.Load()
	if n > int64(lim.Count) {
		t.Errorf("%d leased requests admitted over %d instances, limit %d", n, len(checkers), lim.Count)
	}
	t.Logf("%d of %d leased requests admitted over %d instances (limit %d)", n, workers*perWorker+1, len(checkers), lim.Count)
}

func testMixedBatch(t *testing.T, c permiso.Checker, l permiso.RateLimiter, r permiso.RevocationStore, clock *testclock.Clock) {
	ctx := context.Background()
	now := clock.Now()
	exp := now.Add(time.Hour)
	ipKey, apiKey := id("ip"), id("api")
	minute, hour := id("client")+":{x}:minute", id("client")+":{x}:hour"
	lim := permiso.Limit{Count: 2, Period: time.Minute}
	jti, sid, sub := id("jti"), id("sid"), id("sub")
	revokeToken(t, r, jti, exp)

	for i := range 3 {
		b := c.Batch()
		ip := b.Allow(ipKey, lim)
		api := b.Allow(apiKey, permiso.Limit{Count: 10, Period: time.Minute})
		off := b.Allow(id("off"), permiso.Limit{})
		both := b.AllowAll([]string{minute, hour}, []permiso.Limit{lim, {Count: 5, Period: time.Hour}})
		revokedJTI := b.IsRevoked(jti, sid, sub, now)
		live := b.IsRevoked(id("other"), sid, sub, now)
		none := b.IsRevoked("", "", "", now)
		bad := b.AllowAll([]string{"k"}, nil)
		b.Exec(ctx)

		wantAllowed := i < 2
		if res, err := ip(); err != nil || res.Allowed != wantAllowed || res.Limit != 2 {
			t.Fatalf("batch %d: ip = %+v, %v; want allowed %v", i, res, err, wantAllowed)
		}
		if res, err := api(); err != nil || !res.Allowed || res.Remaining != 10-(i+1) {
			t.Fatalf("batch %d: api = %+v, %v; want allowed, %d remaining", i, res, err, 10-(i+1))
		}
		if res, err := off(); err != nil || !res.Allowed {
			t.Fatalf("batch %d: disabled limit = %+v, %v", i, res, err)
		}
		res, err := both()
		if err != nil || len(res) != 2 || res[0].Allowed != wantAllowed || res[1].Allowed != wantAllowed {
			t.Fatalf("batch %d: AllowAll = %+v, %v; want allowed %v", i, res, err, wantAllowed)
		}
		if v, err := revokedJTI(); err != nil || !v {
			t.Fatalf("batch %d: revoked jti = %v, %v", i, v, err)
		}
		if v, err := live(); err != nil || v {
			t.Fatalf("batch %d: live token = %v, %v", i, v, err)
		}
		if v, err := none(); err != nil || v {
			t.Fatalf("batch %d: no identifiers = %v, %v", i, v, err)
		}
		if _, err := bad(); permiso.ErrorCode(err) != permiso.EINVALID {
			t.Fatalf("batch %d: AllowAll without limits = %v, want EINVALID", i, err)
		}
	}
	// What the batches counted is what the limiter holds.
	if res := peekLimit(t, l, ipKey, lim); res.Remaining != 0 {
		t.Errorf("limiter sees %d remaining after two admitted batches, want 0", res.Remaining)
	}
	if res := peekLimit(t, l, hour, permiso.Limit{Count: 5, Period: time.Hour}); res.Remaining != 3 {
		t.Errorf("hour key: %d remaining, want 3 (refused requests are not counted)", res.Remaining)
	}
	// A revocation made after a batch was queued but before it ran counts.
	b := c.Batch()
	later := b.IsRevoked(id("jti"), sid, sub, now)
	revokeSession(t, r, sid, exp)
	b.Exec(ctx)
	if v, err := later(); err != nil || !v {
		t.Errorf("session revoked before Exec: IsRevoked = %v, %v; want true", v, err)
	}
}

// testConcurrentBatches: of 20 concurrent batches on one fresh key limited
// to 5, exactly 5 are admitted.
func testConcurrentBatches(t *testing.T, c permiso.Checker) {
	key := id("conc")
	lim := permiso.Limit{Count: 5, Period: time.Minute}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			b := c.Batch()
			res := b.Allow(key, lim)
			rev := b.IsRevoked(id("jti"), "", "", time.Now())
			b.Exec(context.Background())
			r, err := res()
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := rev(); err != nil {
				t.Error(err)
			}
			if r.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Errorf("%d of 20 concurrent batches admitted, want exactly 5", n)
	}
}

// BatchedLimiter is a permiso.RateLimiter whose Allow and AllowAll go
// through one-check batches of c (Peek goes to l): the rate-limiter suite
// run over it shows that batches decide what the limiter decides.
func BatchedLimiter(l permiso.RateLimiter, c permiso.Checker) permiso.RateLimiter {
	return batchedLimiter{RateLimiter: l, c: c}
}

type batchedLimiter struct {
	permiso.RateLimiter
	c permiso.Checker
}

func (b batchedLimiter) Allow(ctx context.Context, key string, limit permiso.Limit) (permiso.LimitResult, error) {
	batch := b.c.Batch()
	res := batch.Allow(key, limit)
	batch.Exec(ctx)
	return res()
}

func (b batchedLimiter) AllowAll(ctx context.Context, keys []string, limits []permiso.Limit) ([]permiso.LimitResult, error) {
	batch := b.c.Batch()
	res := batch.AllowAll(keys, limits)
	batch.Exec(ctx)
	return res()
}

// BatchedRevocations is a permiso.RevocationStore whose IsRevoked goes
// through one-check batches of c (the writes go to r).
func BatchedRevocations(r permiso.RevocationStore, c permiso.Checker) permiso.RevocationStore {
	return batchedRevocations{RevocationStore: r, c: c}
}

type batchedRevocations struct {
	permiso.RevocationStore
	c permiso.Checker
}

func (b batchedRevocations) IsRevoked(ctx context.Context, jti, sid, subject string, issuedAt time.Time) (bool, error) {
	batch := b.c.Batch()
	res := batch.IsRevoked(jti, sid, subject, issuedAt)
	batch.Exec(ctx)
	return res()
}
