package cachetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

// NewLockout returns a fresh lockout for one test that locks a key for
// duration after maxAttempts consecutive failures, and the clock it runs
// on. It is called from parallel subtests: each call must return a lockout
// isolated from every other and register its own cleanup.
type NewLockout func(t *testing.T, maxAttempts int, duration time.Duration) (permiso.Lockout, *Clock)

// RunLockout runs the conformance suite for permiso.Lockout (SPEC §6).
// Besides the obligations written on the interface, it requires that:
//   - the failure that reaches the maximum returns Locked and JustLocked,
//     with LockedUntil = now + duration; Check then reports the same lock;
//   - failures while locked return the lock unchanged, without
//     JustLocked: the lock does not slide;
//   - the lock ends after duration, and the count starts again from zero;
//     a failure count is forgotten duration after the last failure;
//   - Reset clears the count and the lock;
//   - keys are independent, whatever their names.
//
// Expiry is checked with one-second durations: a real clock sleeps about
// 1.2 s, in a parallel subtest.
func RunLockout(t *testing.T, newLockout NewLockout) {
	t.Helper()
	tests := []struct {
		name     string
		max      int
		duration time.Duration
		fn       func(t *testing.T, l permiso.Lockout, c *Clock, max int, d time.Duration)
	}{
		{"LocksAfterMaxAttempts", 3, 30 * time.Minute, testLocks},
		{"LockDoesNotSlide", 2, 30 * time.Minute, testLockDoesNotSlide},
		{"UnknownKey", 3, 30 * time.Minute, testLockoutUnknown},
		{"Reset", 3, 30 * time.Minute, testLockoutReset},
		{"KeysIsolated", 2, 30 * time.Minute, testLockoutKeysIsolated},
		{"Expiry", 2, time.Second, testLockoutExpiry},
		{"Concurrent", 5, 30 * time.Minute, testLockoutConcurrent},
		{"MaxOne", 1, 30 * time.Minute, testLockoutMaxOne},
		{"Undo", 3, 30 * time.Minute, testLockoutUndo},
		{"UndoConcurrent", 5, 30 * time.Minute, testLockoutUndoConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, c := newLockout(t, tc.max, tc.duration)
			tc.fn(t, l, c, tc.max, tc.duration)
		})
	}
}

func fail(t *testing.T, l permiso.Lockout, key string) permiso.LockoutState {
	t.Helper()
	s, err := l.Fail(t.Context(), key)
	if err != nil {
		t.Fatalf("Fail(%q): %v", key, err)
	}
	return s
}

func check(t *testing.T, l permiso.Lockout, key string) permiso.LockoutState {
	t.Helper()
	s, err := l.Check(t.Context(), key)
	if err != nil {
		t.Fatalf("Check(%q): %v", key, err)
	}
	return s
}

func reset(t *testing.T, l permiso.Lockout, key string) {
	t.Helper()
	if err := l.Reset(t.Context(), key); err != nil {
		t.Fatalf("Reset(%q): %v", key, err)
	}
}

// near reports whether a and b are within the slack of a real clock (and
// of Redis's own clock, which stamps LockedUntil).
func near(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -2*time.Second && d < 2*time.Second
}

func testLocks(t *testing.T, l permiso.Lockout, c *Clock, max int, d time.Duration) {
	key := id("user")
	for i := 1; i < max; i++ {
		s := fail(t, l, key)
		if s.Locked || s.JustLocked || s.Failures != i {
			t.Fatalf("failure %d: %+v, want Failures %d, not locked", i, s, i)
		}
		if cs := check(t, l, key); cs.Locked || cs.Failures != i {
			t.Fatalf("Check after failure %d: %+v", i, cs)
		}
	}
	s := fail(t, l, key)
	if !s.Locked || !s.JustLocked || s.Failures != max {
		t.Fatalf("failure %d: %+v, want Locked, JustLocked, Failures %d", max, s, max)
	}
	if !near(s.LockedUntil, c.Now().Add(d)) {
		t.Errorf("LockedUntil = %v, want about %v", s.LockedUntil, c.Now().Add(d))
	}
	cs := check(t, l, key)
	if !cs.Locked || cs.JustLocked || !cs.LockedUntil.Equal(s.LockedUntil) {
		t.Errorf("Check of a locked key = %+v, want Locked until %v (JustLocked only from Fail)", cs, s.LockedUntil)
	}
}

func testLockDoesNotSlide(t *testing.T, l permiso.Lockout, c *Clock, max int, _ time.Duration) {
	key := id("user")
	var locked permiso.LockoutState
	for range max {
		locked = fail(t, l, key)
	}
	if !locked.Locked {
		t.Fatalf("not locked after %d failures: %+v", max, locked)
	}
	c.Advance(time.Second)
	for range 5 {
		s := fail(t, l, key)
		if !s.Locked || s.JustLocked || !s.LockedUntil.Equal(locked.LockedUntil) {
			t.Fatalf("failure while locked = %+v, want the same lock (until %v), not JustLocked", s, locked.LockedUntil)
		}
	}
	if cs := check(t, l, key); !cs.LockedUntil.Equal(locked.LockedUntil) {
		t.Errorf("lock moved: %v, want %v", cs.LockedUntil, locked.LockedUntil)
	}
}

func testLockoutUnknown(t *testing.T, l permiso.Lockout, _ *Clock, _ int, _ time.Duration) {
	key := id("nobody")
	if s := check(t, l, key); s != (permiso.LockoutState{}) {
		t.Errorf("Check of an unknown key = %+v, want the zero state", s)
	}
	reset(t, l, key) // resetting nothing is fine
	if s := check(t, l, key); s != (permiso.LockoutState{}) {
		t.Errorf("after Reset = %+v", s)
	}
}

func testLockoutReset(t *testing.T, l permiso.Lockout, _ *Clock, max int, _ time.Duration) {
	key := id("user")
	for range max - 1 {
		fail(t, l, key)
	}
	reset(t, l, key)
	if s := check(t, l, key); s.Failures != 0 || s.Locked {
		t.Fatalf("after Reset: %+v", s)
	}
	// The count starts over: max-1 more failures do not lock.
	for range max - 1 {
		if s := fail(t, l, key); s.Locked {
			t.Fatalf("locked too early after Reset: %+v", s)
		}
	}
	if s := fail(t, l, key); !s.JustLocked {
		t.Fatalf("failure %d after Reset: %+v, want JustLocked", max, s)
	}
	// Reset lifts a lock (admin unlock, password reset).
	reset(t, l, key)
	if s := check(t, l, key); s.Locked || s.Failures != 0 {
		t.Fatalf("after Reset of a lock: %+v", s)
	}
	if s := fail(t, l, key); s.Locked || s.Failures != 1 {
		t.Fatalf("first failure after unlock: %+v", s)
	}
}

func testLockoutKeysIsolated(t *testing.T, l permiso.Lockout, _ *Clock, max int, _ time.Duration) {
	key := id("user")
	for range max {
		fail(t, l, key)
	}
	for _, other := range []string{key + "x", key[:len(key)-1], id("user")} {
		if s := check(t, l, other); s.Locked || s.Failures != 0 {
			t.Errorf("Check(%q) = %+v, want untouched", other, s)
		}
		if s := fail(t, l, other); s.Locked || s.Failures != 1 {
			t.Errorf("Fail(%q) = %+v, want Failures 1", other, s)
		}
	}
}

func testLockoutExpiry(t *testing.T, l permiso.Lockout, c *Clock, max int, d time.Duration) {
	locked, counted := id("locked"), id("counted")
	for range max {
		fail(t, l, locked)
	}
	if s := check(t, l, locked); !s.Locked {
		t.Fatalf("not locked: %+v", s)
	}
	fail(t, l, counted) // one failure, below the maximum
	c.Advance(d + 200*time.Millisecond)
	if s := check(t, l, locked); s.Locked || s.Failures != 0 {
		t.Errorf("after the lock ended: %+v, want unlocked with no failures", s)
	}
	if s := fail(t, l, locked); s.Locked || s.Failures != 1 {
		t.Errorf("first failure after the lock ended: %+v, want Failures 1", s)
	}
	if s := check(t, l, counted); s.Failures != 0 {
		t.Errorf("a failure count outlived the window: %+v", s)
	}
}

// testLockoutConcurrent: of N concurrent failures exactly max are counted
// and exactly one locks (the interface's obligation).
func testLockoutConcurrent(t *testing.T, l permiso.Lockout, _ *Clock, max int, _ time.Duration) {
	const n = 50
	key := id("user")
	var (
		mu                  sync.Mutex
		counted, justLocked int
		until               time.Time
	)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			s, err := l.Fail(t.Context(), key)
			if err != nil {
				t.Errorf("Fail: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !s.Locked || s.JustLocked {
				counted++
			}
			if s.JustLocked {
				justLocked++
			}
			if s.Locked {
				if !until.IsZero() && !until.Equal(s.LockedUntil) {
					t.Errorf("two different locks: %v and %v", until, s.LockedUntil)
				}
				until = s.LockedUntil
			}
		})
	}
	wg.Wait()
	if counted != max || justLocked != 1 {
		t.Errorf("%d concurrent failures: %d counted, %d locked; want %d and 1", n, counted, justLocked, max)
	}
	if s := check(t, l, key); !s.Locked || s.Failures != max {
		t.Errorf("after the race: %+v, want Locked with Failures %d", s, max)
	}
}

func testLockoutMaxOne(t *testing.T, l permiso.Lockout, _ *Clock, _ int, _ time.Duration) {
	key := id("user")
	if s := fail(t, l, key); !s.Locked || !s.JustLocked || s.Failures != 1 {
		t.Fatalf("MAX 1: first failure = %+v, want JustLocked", s)
	}
}

func undo(t *testing.T, l permiso.Lockout, key string, st permiso.LockoutState) {
	t.Helper()
	if err := l.Undo(context.Background(), key, st); err != nil {
		t.Fatalf("Undo(%s): %v", key, err)
	}
}

// testLockoutUndo: Undo takes back exactly the failure of the call whose
// state it is given, lifts only the lock that call set, and leaves
// everything else alone.
func testLockoutUndo(t *testing.T, l permiso.Lockout, c *Clock, max int, _ time.Duration) {
	key := id("undo")
	fail(t, l, key)
	st := fail(t, l, key)
	undo(t, l, key, st)
	if got := check(t, l, key); got.Failures != 1 || got.Locked {
		t.Fatalf("after undoing the 2nd failure: %+v, want 1 failure", got)
	}
	fail(t, l, key)
	st = fail(t, l, key)
	if !st.JustLocked {
		t.Fatalf("3rd failure: %+v, want JustLocked", st)
	}
	// The call that found the key locked counted nothing: undoing it
	// changes nothing.
	locked := fail(t, l, key)
	undo(t, l, key, locked)
	if got := check(t, l, key); !got.Locked {
		t.Fatalf("undoing a call that found the lock lifted it: %+v", got)
	}
	// Undoing the locking call lifts its lock and takes back its failure.
	undo(t, l, key, st)
	if got := check(t, l, key); got.Locked || got.Failures != max-1 {
		t.Fatalf("after undoing the locking failure: %+v, want unlocked with %d failures", got, max-1)
	}
	if st := fail(t, l, key); !st.JustLocked {
		t.Fatalf("the next failure must lock again: %+v", st)
	}
	// A lock set by another call survives an undo of an older lock.
	reset(t, l, key)
	c.Advance(2 * time.Second)
	var again permiso.LockoutState
	for range max {
		again = fail(t, l, key)
	}
	if !again.JustLocked {
		t.Fatalf("re-lock: %+v", again)
	}
	undo(t, l, key, st)
	if got := check(t, l, key); !got.Locked {
		t.Fatalf("undoing an older lock lifted a newer one: %+v", got)
	}
	// Nothing to take back on a key that was reset.
	reset(t, l, key)
	undo(t, l, key, permiso.LockoutState{Failures: 1})
	if got := check(t, l, key); got.Failures != 0 || got.Locked {
		t.Fatalf("undo on a reset key: %+v", got)
	}
}

// testLockoutUndoConcurrent: attempts that are counted and then undone
// (all turned away before their password was checked) never lock the key,
// however many run at once.
func testLockoutUndoConcurrent(t *testing.T, l permiso.Lockout, _ *Clock, _ int, _ time.Duration) {
	key := id("undo-conc")
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			st, err := l.Fail(context.Background(), key)
			if err != nil {
				t.Error(err)
				return
			}
			if err := l.Undo(context.Background(), key, st); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := check(t, l, key); got.Locked || got.Failures != 0 {
		t.Errorf("after 40 counted-and-undone attempts: %+v, want nothing left", got)
	}
}
