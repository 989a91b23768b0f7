package sharedstatetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
)

// NewRateLimiter returns a fresh, empty limiter for one test, and the
// clock it runs on. Like NewRevocationStore it is called from parallel
// subtests, so each call must return a limiter isolated from every other
// (its own instance or its own key prefix) and register its own cleanup.
type NewRateLimiter func(t *testing.T) (permiso.RateLimiter, *testclock.Clock)

// RunRateLimiter runs the conformance suite for permiso.RateLimiter.
// Besides the obligations written on the interface, the suite requires the
// semantics of docs/abuse-resistance.md ("Algorithm: sliding window of
// slots"):
//   - "N per P" admits at most N requests in any window of length P, and
//     N again once P plus one slot (Limit.Slot) has passed since the
//     oldest admitted one;
//   - a refused request is not counted: hammering a limited key does not
//     delay its recovery;
//   - Remaining, Reset and RetryAfter describe the key after the call:
//     RetryAfter is when the oldest counted request leaves the window, at
//     most one slot after P has passed since it was admitted;
//   - a disabled limit admits everything and records nothing;
//   - AllowAll counts a request in every key or in none.
//
// Time-dependent checks use periods of one or two seconds, so a real clock
// sleeps about three seconds in all, in parallel subtests.
func RunRateLimiter(t *testing.T, newLimiter NewRateLimiter) {
	t.Helper()
	runSuite(t, newLimiter, []conformance[permiso.RateLimiter]{
		{"AllowsUpToLimit", testAllowsUpToLimit},
		{"PeekDoesNotCount", testPeekDoesNotCount},
		{"KeysIsolated", testLimiterKeysIsolated},
		{"RefusedNotCounted", testRefusedNotCounted},
		{"SlidingWindow", testSlidingWindow},
		{"LimitLowered", testLimitLowered},
		{"Disabled", testLimitDisabled},
		{"AllowAllCountsAllOrNothing", testAllowAll},
		{"AllowAllArguments", testAllowAllArguments},
		{"Concurrent", testLimiterConcurrent},
		{"ConcurrentAllowAll", testAllowAllConcurrent},
	}, "LimitersIsolated", func(t *testing.T, a, b permiso.RateLimiter, _ *testclock.Clock) {
		lim := permiso.Limit{Count: 1, Period: time.Minute}
		key := id("iso")
		allow(t, a, key, lim, true)
		allow(t, a, key, lim, false)
		allow(t, b, key, lim, true)
	})
}

// slack absorbs the time between the limiter's clock reading and the
// test's, for backends on a real clock.
const slack = 500 * time.Millisecond

func allow(t *testing.T, l permiso.RateLimiter, key string, lim permiso.Limit, want bool) permiso.LimitResult {
	t.Helper()
	r, err := l.Allow(t.Context(), key, lim)
	if err != nil {
		t.Fatalf("Allow(%q, %+v): %v", key, lim, err)
	}
	if r.Allowed != want {
		t.Fatalf("Allow(%q, %+v) = %+v, want Allowed=%v", key, lim, r, want)
	}
	return r
}

func peekLimit(t *testing.T, l permiso.RateLimiter, key string, lim permiso.Limit) permiso.LimitResult {
	t.Helper()
	r, err := l.Peek(t.Context(), key, lim)
	if err != nil {
		t.Fatalf("Peek(%q, %+v): %v", key, lim, err)
	}
	return r
}

func within(t *testing.T, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %v, want in [%v, %v]", what, got, lo, hi)
	}
}

func testAllowsUpToLimit(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	lim := permiso.Limit{Count: 5, Period: time.Minute}
	key := id("ip")
	for i := range 5 {
		r := allow(t, l, key, lim, true)
		if r.Limit != 5 || r.Remaining != 4-i {
			t.Errorf("request %d: %+v, want Limit 5, Remaining %d", i+1, r, 4-i)
		}
		within(t, "Reset of an allowed request", r.Reset, time.Minute-slack, time.Minute+lim.Slot())
		if r.RetryAfter != 0 {
			t.Errorf("request %d: RetryAfter %v on an allowed request", i+1, r.RetryAfter)
		}
	}
	for range 3 {
		r := allow(t, l, key, lim, false)
		if r.Limit != 5 || r.Remaining != 0 {
			t.Errorf("refused: %+v, want Limit 5, Remaining 0", r)
		}
		within(t, "RetryAfter", r.RetryAfter, time.Minute-slack-time.Second, time.Minute+lim.Slot())
		within(t, "Reset", r.Reset, time.Minute-slack-time.Second, time.Minute+lim.Slot())
	}
}

func testPeekDoesNotCount(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	lim := permiso.Limit{Count: 2, Period: time.Minute}
	key := id("peek")
	r := peekLimit(t, l, key, lim)
	if !r.Allowed || r.Limit != 2 || r.Remaining != 2 || r.Reset != 0 || r.RetryAfter != 0 {
		t.Errorf("Peek of a fresh key = %+v, want Allowed, Limit 2, Remaining 2, no Reset", r)
	}
	for range 5 {
		peekLimit(t, l, key, lim)
	}
	allow(t, l, key, lim, true)
	r = peekLimit(t, l, key, lim)
	if !r.Allowed || r.Remaining != 1 {
		t.Errorf("Peek after one request = %+v, want Allowed, Remaining 1", r)
	}
	within(t, "Peek Reset", r.Reset, time.Minute-slack, time.Minute+lim.Slot())
	allow(t, l, key, lim, true)
	r = peekLimit(t, l, key, lim)
	if r.Allowed || r.Remaining != 0 {
		t.Errorf("Peek of an exhausted key = %+v, want not Allowed, Remaining 0", r)
	}
	within(t, "Peek RetryAfter", r.RetryAfter, time.Minute-slack, time.Minute+lim.Slot())
	allow(t, l, key, lim, false)
}

func testLimiterKeysIsolated(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	lim := permiso.Limit{Count: 1, Period: time.Minute}
	key := id("k")
	allow(t, l, key, lim, true)
	allow(t, l, key, lim, false)
	// A key that is a prefix or an extension of another is another key.
	allow(t, l, key+"x", lim, true)
	allow(t, l, key[:len(key)-1], lim, true)
	allow(t, l, id("k"), lim, true)
}

func testRefusedNotCounted(t *testing.T, l permiso.RateLimiter, c *testclock.Clock) {
	lim := permiso.Limit{Count: 2, Period: time.Second}
	key := id("hammer")
	allow(t, l, key, lim, true)
	allow(t, l, key, lim, true)
	for range 10 {
		allow(t, l, key, lim, false)
	}
	c.Advance(lim.Period + lim.Slot() + 100*time.Millisecond)
	// Both slots are back: the refused requests left no trace.
	allow(t, l, key, lim, true)
	allow(t, l, key, lim, true)
	allow(t, l, key, lim, false)
}

func testSlidingWindow(t *testing.T, l permiso.RateLimiter, c *testclock.Clock) {
	lim := permiso.Limit{Count: 2, Period: 2 * time.Second}
	key := id("slide")
	allow(t, l, key, lim, true) // t0
	c.Advance(time.Second)
	allow(t, l, key, lim, true) // t0+1s
	r := allow(t, l, key, lim, false)
	// The first request leaves the window at t0+2s, about 1 s from now;
	// the budget is whole again at t0+3s.
	within(t, "RetryAfter", r.RetryAfter, time.Second-slack, time.Second+lim.Slot())
	within(t, "Reset", r.Reset, 2*time.Second-slack, 2*time.Second+lim.Slot())
	c.Advance(time.Second + lim.Slot() + 100*time.Millisecond)
	// A fixed window starting at t0 would now admit two; the sliding
	// window admits one, because the request at t0+1s still counts.
	r = allow(t, l, key, lim, true)
	if r.Remaining != 0 {
		t.Errorf("after the first request expired: %+v, want Remaining 0", r)
	}
	allow(t, l, key, lim, false)
}

func testLimitLowered(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	key := id("lowered")
	big := permiso.Limit{Count: 5, Period: time.Minute}
	for range 5 {
		allow(t, l, key, big, true)
	}
	small := permiso.Limit{Count: 3, Period: time.Minute}
	r := allow(t, l, key, small, false)
	if r.Limit != 3 || r.Remaining != 0 {
		t.Errorf("lowered limit: %+v, want Limit 3, Remaining 0", r)
	}
	within(t, "RetryAfter", r.RetryAfter, time.Minute-slack-time.Second, time.Minute+small.Slot())
}

func testLimitDisabled(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	key := id("off")
	for _, lim := range []permiso.Limit{{}, {Count: 0, Period: time.Minute}, {Count: 5}} {
		for range 10 {
			allow(t, l, key, lim, true)
		}
		if r := peekLimit(t, l, key, lim); !r.Allowed {
			t.Errorf("Peek with a disabled limit = %+v", r)
		}
	}
	// Nothing was recorded.
	r := peekLimit(t, l, key, permiso.Limit{Count: 1, Period: time.Minute})
	if !r.Allowed || r.Remaining != 1 {
		t.Errorf("after disabled-limit requests: %+v, want an untouched key", r)
	}
}

func allowAll(t *testing.T, l permiso.RateLimiter, keys []string, limits []permiso.Limit) []permiso.LimitResult {
	t.Helper()
	res, err := l.AllowAll(t.Context(), keys, limits)
	if err != nil {
		t.Fatalf("AllowAll(%q): %v", keys, err)
	}
	if len(res) != len(keys) {
		t.Fatalf("AllowAll(%q): %d results", keys, len(res))
	}
	return res
}

func testAllowAll(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	tag := "{" + id("client") + "}"
	minute, hour := tag+":minute", tag+":hour"
	keys := []string{minute, hour}
	limits := []permiso.Limit{{Count: 3, Period: time.Minute}, {Count: 5, Period: time.Hour}}
	for i := range 3 {
		res := allowAll(t, l, keys, limits)
		if !res[0].Allowed || !res[1].Allowed || res[0].Remaining != 2-i || res[1].Remaining != 4-i {
			t.Fatalf("request %d: %+v", i+1, res)
		}
	}
	// The minute limit refuses: the hour key is not counted.
	res := allowAll(t, l, keys, limits)
	if res[0].Allowed || res[1].Allowed {
		t.Fatalf("4th request: %+v, want refused", res)
	}
	within(t, "RetryAfter of the refusing key", res[0].RetryAfter, time.Minute-slack-time.Second, time.Minute+limits[0].Slot())
	if r := peekLimit(t, l, hour, limits[1]); r.Remaining != 2 {
		t.Errorf("hour key after a refused request: %+v, want Remaining 2 (not counted)", r)
	}
	if r := peekLimit(t, l, minute, limits[0]); r.Remaining != 0 {
		t.Errorf("minute key: %+v, want Remaining 0", r)
	}
	// A disabled limit among them admits and records nothing.
	tag2 := "{" + id("client") + "}"
	res = allowAll(t, l, []string{tag2 + ":a", tag2 + ":b"}, []permiso.Limit{{}, {Count: 1, Period: time.Minute}})
	if !res[0].Allowed || !res[1].Allowed {
		t.Fatalf("with a disabled limit: %+v", res)
	}
	res = allowAll(t, l, []string{tag2 + ":a", tag2 + ":b"}, []permiso.Limit{{}, {Count: 1, Period: time.Minute}})
	if res[1].Allowed || res[0].Allowed {
		t.Fatalf("second request with a disabled limit: %+v, want refused by the other limit", res)
	}
}

func testAllowAllArguments(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	lim := permiso.Limit{Count: 1, Period: time.Minute}
	tag := "{" + id("args") + "}"
	for name, args := range map[string]struct {
		keys   []string
		limits []permiso.Limit
	}{
		"no keys":        {nil, nil},
		"length differs": {[]string{tag + "a", tag + "b"}, []permiso.Limit{lim}},
		"duplicate key":  {[]string{tag + "a", tag + "a"}, []permiso.Limit{lim, lim}},
	} {
		_, err := l.AllowAll(t.Context(), args.keys, args.limits)
		if code := permiso.ErrorCode(err); code != permiso.EINVALID {
			t.Errorf("%s: err = %v (code %q), want EINVALID", name, err, code)
		}
	}
}

// hammer calls try perWorker times in each of workers goroutines at once
// and counts the calls it allowed and refused; a goroutine stops at its
// first error, reported as op's.
func hammer(t *testing.T, op string, workers, perWorker int, try func() (bool, error)) (allowed, refused int64) {
	var a, r atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				ok, err := try()
				if err != nil {
					t.Errorf("%s: %v", op, err)
					return
				}
				if ok {
					a.Add(1)
				} else {
					r.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return a.Load(), r.Load()
}

// testLimiterConcurrent: of N concurrent requests on a fresh key, exactly
// Count are allowed (the interface's obligation).
func testLimiterConcurrent(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	const workers, perWorker, count = 16, 8, 37
	lim := permiso.Limit{Count: count, Period: time.Minute}
	key := id("race")
	a, r := hammer(t, "Allow", workers, perWorker, func() (bool, error) {
		res, err := l.Allow(t.Context(), key, lim)
		return res.Allowed, err
	})
	if a != count || r != workers*perWorker-count {
		t.Errorf("%d concurrent requests with limit %d: %d allowed, %d refused", workers*perWorker, count, a, r)
	}
}

func testAllowAllConcurrent(t *testing.T, l permiso.RateLimiter, _ *testclock.Clock) {
	const workers, perWorker = 12, 6
	tag := "{" + id("conc") + "}"
	keys := []string{tag + ":m", tag + ":h"}
	limits := []permiso.Limit{{Count: 20, Period: time.Minute}, {Count: 13, Period: time.Hour}}
	a, _ := hammer(t, "AllowAll", workers, perWorker, func() (bool, error) {
		res, err := l.AllowAll(t.Context(), keys, limits)
		if err == nil && res[0].Allowed != res[1].Allowed {
			t.Errorf("AllowAll results disagree: %+v", res)
		}
		return err == nil && res[0].Allowed, err
	})
	if a != 13 {
		t.Errorf("allowed %d, want 13 (the tighter limit)", a)
	}
	if r := peekLimit(t, l, keys[0], limits[0]); r.Remaining != 20-13 {
		t.Errorf("minute key counted %d requests, want 13", 20-r.Remaining)
	}
}
