package sharedstatetest

import (
	"context"
	"fmt"
	"slices"
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
	// Subtests on a checker and the limiter it counts with.
	for _, st := range []struct {
		name string
		run  func(t *testing.T, c permiso.Checker, l permiso.RateLimiter)
	}{
		{"ConcurrentBatches", func(t *testing.T, c permiso.Checker, _ permiso.RateLimiter) { testConcurrentBatches(t, c) }},
		{"LeasedWithinLimit", func(t *testing.T, c permiso.Checker, _ permiso.RateLimiter) { LeasedWithinLimit(t, c) }},
		{"LeasedTogetherWithinLimits", func(t *testing.T, c permiso.Checker, l permiso.RateLimiter) { LeasedTogetherWithinLimits(t, l, c) }},
		{"LeasedTogetherOneInstanceAdmitsItsLimit", func(t *testing.T, c permiso.Checker, _ permiso.RateLimiter) { testLeasedOneInstance(t, c) }},
		{"LeasedTogetherExactBelowSlots", func(t *testing.T, c permiso.Checker, l permiso.RateLimiter) { testLeasedTogetherExact(t, l, c) }},
	} {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			c, l, _, _ := newChecker(t)
			st.run(t, c, l)
		})
	}
}

// LeasedTogetherWithinLimits sends many concurrent AllowAllLeased checks
// of one service client's minute and hour limits (keys in one hash slot)
// through the checkers given (instances sharing one state, l among them)
// and requires what docs/abuse-resistance.md ("Leases") promises: never
// more admitted than either limit, across them all, whichever of the two
// is the tighter; every admitted request counted in both keys (a lease
// counts in every key or in none); both results of a request agreeing;
// the first request admitted. How many fewer were admitted is printed,
// not required.
func LeasedTogetherWithinLimits(t *testing.T, l permiso.RateLimiter, checkers ...permiso.Checker) {
	t.Helper()
	for _, tc := range []struct {
		name         string
		minute, hour permiso.Limit
	}{
		// A lease of at most 10 requests; the minute limit binds.
		{"MinuteBinds", permiso.Limit{Count: 600, Period: time.Minute}, permiso.Limit{Count: 100_000, Period: time.Hour}},
		// A lease of at most 5 (the hour's share of a slot, not the
		// minute's 100); the hour limit binds.
		{"HourBinds", permiso.Limit{Count: 6000, Period: time.Minute}, permiso.Limit{Count: 300, Period: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := id("client")
			keys := []string{base + ":{c}:minute", base + ":{c}:hour"}
			limits := []permiso.Limit{tc.minute, tc.hour}
			limit := min(tc.minute.Count, tc.hour.Count)
			check := func(c permiso.Checker) (bool, error) {
				b := c.Batch()
				res := b.AllowAllLeased(slices.Clone(keys), slices.Clone(limits))
				b.Exec(context.Background())
				r, err := res()
				if err != nil {
					return false, err
				}
				if len(r) != 2 || r[0].Allowed != r[1].Allowed {
					return false, fmt.Errorf("results disagree: %+v", r)
				}
				for i, lim := range limits {
					if r[i].Limit != lim.Count || r[0].Allowed && r[i].Remaining >= lim.Count {
						return false, fmt.Errorf("admitted with %+v under %+v", r[i], lim)
					}
				}
				return r[0].Allowed, nil
			}
			n := leasedLoad(t, checkers, check)
			if n > int64(limit) {
				t.Errorf("%d requests admitted over %d instances, limits %d/minute and %d/hour", n, len(checkers), tc.minute.Count, tc.hour.Count)
			}
			for i, lim := range limits {
				if used := lim.Count - peekLimit(t, l, keys[i], lim).Remaining; int64(used) < n || used > lim.Count {
					t.Errorf("%s: %d counted for %d admitted, limit %d", keys[i], used, n, lim.Count)
				}
			}
			t.Logf("%d of %d requests admitted over %d instances (limit %d)", n, leasedRequests, len(checkers), limit)
		})
	}
}

// testLeasedOneInstance: one instance refuses no request it has counted.
// Exactly as many concurrent requests as a client's minute limit, all
// through one checker, are all admitted: the requests the instance's
// leases counted and did not spend yet are spent by the requests whose
// own lease run Redis refused for want of room (docs/abuse-resistance.md,
// "Leases"). The load tool's clients get their 1000 tokens a minute so.
func testLeasedOneInstance(t *testing.T, c permiso.Checker) {
	base := id("client")
	keys := []string{base + ":{c}:minute", base + ":{c}:hour"}
	limits := []permiso.Limit{{Count: 600, Period: time.Minute}, {Count: 100_000, Period: time.Hour}}
	const workers = 8
	var refused atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range limits[0].Count / workers {
				b := c.Batch()
				res := b.AllowAllLeased(keys, limits)
				b.Exec(context.Background())
				r, err := res()
				if err != nil {
					t.Error(err)
					return
				}
				if !r[0].Allowed {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Errorf("%d of %d requests refused under a limit of %d, all through one instance", n, limits[0].Count, limits[0].Count)
	}
}

// testLeasedTogetherExact: limits whose lease would hold one request
// (counts below 2 × permiso.LimitSlots) are counted exactly per request
// through AllowAllLeased, their results those of AllowAll.
func testLeasedTogetherExact(t *testing.T, l permiso.RateLimiter, c permiso.Checker) {
	base := id("client")
	keys := []string{base + ":{c}:minute", base + ":{c}:hour"}
	limits := []permiso.Limit{{Count: 5, Period: time.Minute}, {Count: 50, Period: time.Hour}}
	for i := range 8 {
		b := c.Batch()
		res := b.AllowAllLeased(keys, limits)
		b.Exec(context.Background())
		r, err := res()
		if err != nil || len(r) != 2 {
			t.Fatalf("request %d: %+v, %v", i, r, err)
		}
		if i < 5 {
			if !r[0].Allowed || r[0].Remaining != 4-i || r[1].Remaining != 49-i {
				t.Fatalf("request %d: %+v; want allowed, %d and %d remaining", i, r, 4-i, 49-i)
			}
			continue
		}
		if r[0].Allowed || r[1].Allowed || r[0].RetryAfter <= 0 {
			t.Fatalf("request %d: %+v; want refused with Retry-After", i, r)
		}
	}
	if got := peekLimit(t, l, keys[1], limits[1]).Remaining; got != 45 {
		t.Errorf("hour key: %d remaining, want 45 (five counted, refusals not)", got)
	}
}

// LeasedWithinLimit sends many concurrent AllowLeased checks of one key
// through the checkers given (instances sharing one state) and requires
// what docs/abuse-resistance.md ("Leases") promises: never more admitted
// than the limit in its period, across them all, and the first request
// admitted. How many fewer were admitted (requests leased and not spent)
// is printed, not required.
func LeasedWithinLimit(t *testing.T, checkers ...permiso.Checker) {
	t.Helper()
	key := id("leased")
	lim := permiso.Limit{Count: 600, Period: time.Minute}
	n := leasedLoad(t, checkers, func(c permiso.Checker) (bool, error) {
		b := c.Batch()
		res := b.AllowLeased(key, lim)
		b.Exec(context.Background())
		r, err := res()
		if err != nil {
			return false, err
		}
		if r.Allowed && (r.Remaining >= lim.Count || r.Limit != lim.Count) {
			return false, fmt.Errorf("admitted with %+v", r)
		}
		return r.Allowed, nil
	})
	if n > int64(lim.Count) {
		t.Errorf("%d leased requests admitted over %d instances, limit %d", n, len(checkers), lim.Count)
	}
	t.Logf("%d of %d leased requests admitted over %d instances (limit %d)", n, leasedRequests, len(checkers), lim.Count)
}

// leasedRequests is how many requests leasedLoad sends.
const leasedRequests = leasedWorkers*leasedPerWorker + 1

const leasedWorkers, leasedPerWorker = 8, 150

// leasedLoad sends one request through check on the first checker, which
// must be admitted, then leasedWorkers concurrent series of
// leasedPerWorker, spread over the checkers. It returns how many were
// admitted.
func leasedLoad(t *testing.T, checkers []permiso.Checker, check func(permiso.Checker) (bool, error)) int64 {
	t.Helper()
	if ok, err := check(checkers[0]); err != nil || !ok {
		t.Fatalf("first leased request: allowed %v, %v; want allowed", ok, err)
	}
	allowed := atomic.Int64{}
	allowed.Add(1)
	var wg sync.WaitGroup
	for w := range leasedWorkers {
		c := checkers[w%len(checkers)]
		wg.Go(func() {
			for range leasedPerWorker {
				ok, err := check(c)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return allowed.Load()
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
