package sharedstatetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
)

// NewLockout returns a fresh lockout for one test that locks a key for
// duration after maxAttempts consecutive failures, and the clock it runs
// on. It is called from parallel subtests: each call must return a lockout
// isolated from every other and register its own cleanup.
type NewLockout func(t *testing.T, maxAttempts int, duration time.Duration) (permiso.Lockout, *testclock.Clock)

// RunLockout runs the conformance suite for permiso.Lockout
// (docs/abuse-resistance.md, "Lockout"). Besides the obligations written
// on the interface, it requires that:
//   - Begin admits attempts while failures plus attempts in flight are
//     below the maximum, refuses the next one without a lock (too many in
//     flight) and refuses every one while the key is locked;
//   - the failure that reaches the maximum returns Locked and JustLocked,
//     with LockedUntil = now + duration; Check then reports the same lock;
//   - failures while locked return the lock unchanged, without
//     JustLocked: the lock does not slide;
//   - the lock ends after duration, and the count starts again from zero;
//     a failure count is forgotten duration after the last failure; a
//     place in flight that is never ended is given back after
//     permiso.LockoutAttemptTTL, or duration when shorter;
//   - Succeed clears the failures and the lock but not the other places;
//     Undo gives back one place and nothing else; Reset clears all;
//   - under concurrency, right passwords never lock and every refusal is
//     "too many in flight"; wrong passwords count exactly the maximum and
//     lock once;
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
		fn       func(t *testing.T, l permiso.Lockout, c *testclock.Clock, max int, d time.Duration)
	}{
		{"LocksAfterMaxAttempts", 3, 30 * time.Minute, testLocks},
		{"LockDoesNotSlide", 2, 30 * time.Minute, testLockDoesNotSlide},
		{"UnknownKey", 3, 30 * time.Minute, testLockoutUnknown},
		{"Reset", 3, 30 * time.Minute, testLockoutReset},
		{"KeysIsolated", 2, 30 * time.Minute, testLockoutKeysIsolated},
		{"AnyKey", 2, 30 * time.Minute, testLockoutAnyKey},
		{"Expiry", 2, time.Second, testLockoutExpiry},
		{"AttemptExpiry", 3, time.Second, testLockoutAttemptExpiry},
		{"Admission", 3, 30 * time.Minute, testLockoutAdmission},
		{"SucceedKeepsOtherAttempts", 3, 30 * time.Minute, testLockoutSucceed},
		{"FailCountsAfterReset", 3, 30 * time.Minute, testLockoutFailAfterReset},
		{"Concurrent", 5, 30 * time.Minute, testLockoutConcurrent},
		{"ConcurrentRightPasswords", 5, 30 * time.Minute, testLockoutConcurrentRight},
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

// wantCleared checks that key is back to the zero state: no failures, no
// attempt in flight, no lock.
func wantCleared(t *testing.T, l permiso.Lockout, key, when string) {
	t.Helper()
	if s := check(t, l, key); s != (permiso.LockoutState{}) {
		t.Fatalf("%s: %+v, want the zero state", when, s)
	}
}

// must fails t with op(key) and err when err is set.
func must(t *testing.T, op, key string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s(%q): %v", op, key, err)
	}
}

// ok returns a function that returns its value, failing t with op(key)
// and the error when there is one.
func ok[T any](t *testing.T, op, key string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		must(t, op, key, err)
		return v
	}
}

func begin(t *testing.T, l permiso.Lockout, key string) permiso.LockoutAttempt {
	t.Helper()
	return ok[permiso.LockoutAttempt](t, "Begin", key)(l.Begin(t.Context(), key))
}

// admit begins an attempt that must be admitted.
func admit(t *testing.T, l permiso.Lockout, key string) permiso.LockoutAttempt {
	t.Helper()
	a := begin(t, l, key)
	if !a.Admitted() {
		t.Fatalf("Begin(%q) refused: %+v, want admitted", key, a.State)
	}
	return a
}

// failID ends attempt id with a wrong password.
func failID(t *testing.T, l permiso.Lockout, key, id string) permiso.LockoutState {
	t.Helper()
	return ok[permiso.LockoutState](t, "Fail", key)(l.Fail(t.Context(), key, id))
}

// fail is one whole failed login: an admitted attempt, then a wrong
// password; on a locked key, Fail without a place (what a wrong password
// checked before the lock reports).
func fail(t *testing.T, l permiso.Lockout, key string) permiso.LockoutState {
	t.Helper()
	a := begin(t, l, key)
	if !a.Admitted() && !a.State.Locked {
		t.Fatalf("Begin(%q) refused without a lock: %+v", key, a.State)
	}
	return failID(t, l, key, a.ID)
}

func check(t *testing.T, l permiso.Lockout, key string) permiso.LockoutState {
	t.Helper()
	return ok[permiso.LockoutState](t, "Check", key)(l.Check(t.Context(), key))
}

func reset(t *testing.T, l permiso.Lockout, key string) {
	t.Helper()
	must(t, "Reset", key, l.Reset(t.Context(), key))
}

func succeed(t *testing.T, l permiso.Lockout, key, id string) {
	t.Helper()
	must(t, "Succeed", key, l.Succeed(t.Context(), key, id))
}

func undo(t *testing.T, l permiso.Lockout, key, id string) {
	t.Helper()
	must(t, "Undo", key, l.Undo(context.Background(), key, id))
}

// near reports whether a and b are within the slack of a real clock (and
// of Redis's own clock, which stamps LockedUntil).
func near(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -2*time.Second && d < 2*time.Second
}

func testLocks(t *testing.T, l permiso.Lockout, c *testclock.Clock, max int, d time.Duration) {
	key := id("user")
	for i := 1; i < max; i++ {
		s := fail(t, l, key)
		if s.Locked || s.JustLocked || s.Failures != i || s.Pending != 0 {
			t.Fatalf("failure %d: %+v, want Failures %d, nothing in flight, not locked", i, s, i)
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
	// Locked: every attempt is refused, as locked.
	if a := begin(t, l, key); a.Admitted() || !a.State.Locked || !a.State.LockedUntil.Equal(s.LockedUntil) {
		t.Errorf("Begin on a locked key = %+v, want refused with the lock", a)
	}
}

func testLockDoesNotSlide(t *testing.T, l permiso.Lockout, c *testclock.Clock, max int, _ time.Duration) {
	key := id("user")
	// max attempts in flight together, all wrong: the last one locks.
	var ids []string
	for range max {
		ids = append(ids, admit(t, l, key).ID)
	}
	var locked permiso.LockoutState
	for _, id := range ids {
		locked = failID(t, l, key, id)
	}
	if !locked.JustLocked {
		t.Fatalf("not locked after %d failures: %+v", max, locked)
	}
	c.Advance(time.Second)
	for range 5 {
		s := failID(t, l, key, "")
		if !s.Locked || s.JustLocked || !s.LockedUntil.Equal(locked.LockedUntil) {
			t.Fatalf("failure while locked = %+v, want the same lock (until %v), not JustLocked", s, locked.LockedUntil)
		}
		if a := begin(t, l, key); a.Admitted() || !a.State.Locked {
			t.Fatalf("Begin while locked = %+v", a)
		}
	}
	if cs := check(t, l, key); !cs.LockedUntil.Equal(locked.LockedUntil) || cs.Failures != max {
		t.Errorf("lock moved or count changed: %+v, want until %v with %d failures", cs, locked.LockedUntil, max)
	}
}

func testLockoutUnknown(t *testing.T, l permiso.Lockout, _ *testclock.Clock, _ int, _ time.Duration) {
	key := id("nobody")
	wantCleared(t, l, key, "Check of an unknown key")
	reset(t, l, key) // resetting nothing is fine
	undo(t, l, key, "no-such-attempt")
	wantCleared(t, l, key, "after Reset and Undo")
}

func testLockoutReset(t *testing.T, l permiso.Lockout, _ *testclock.Clock, max int, _ time.Duration) {
	key := id("user")
	for range max - 1 {
		fail(t, l, key)
	}
	admit(t, l, key) // one in flight
	reset(t, l, key)
	if s := check(t, l, key); s.Failures != 0 || s.Pending != 0 || s.Locked {
		t.Fatalf("after Reset: %+v, want nothing", s)
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

func testLockoutKeysIsolated(t *testing.T, l permiso.Lockout, _ *testclock.Clock, max int, _ time.Duration) {
	key := id("user")
	for range max {
		fail(t, l, key)
	}
	for _, other := range []string{key + "x", key[:len(key)-1], id("user")} {
		if s := check(t, l, other); s.Locked || s.Failures != 0 || s.Pending != 0 {
			t.Errorf("Check(%q) = %+v, want untouched", other, s)
		}
		if s := fail(t, l, other); s.Locked || s.Failures != 1 {
			t.Errorf("Fail(%q) = %+v, want Failures 1", other, s)
		}
	}
}

// testLockoutAnyKey: a key is any string, compared byte for byte (the
// Redis adapter stores its SHA-256, the in-process one the string itself;
// docs/abuse-resistance.md, "Lockout"): separators, a Redis Cluster hash
// tag, case, invalid UTF-8, NUL, a long key and the empty key each lock
// alone and are reset alone.
func testLockoutAnyKey(t *testing.T, l permiso.Lockout, _ *testclock.Clock, max int, _ time.Duration) {
	base := id("any")
	keys := []string{base + ":lockout:x", "{" + base + "}", strings.ToUpper(base), base + "\xff\x00", strings.Repeat(base, 400), ""}
	reset(t, l, "") // the empty key is not unique to this run: start it clean
	for i, key := range keys {
		for range max {
			fail(t, l, key)
		}
		if s := check(t, l, key); !s.Locked {
			t.Fatalf("key %d not locked after %d failures: %+v", i, max, s)
		}
		for j, other := range append(keys[i+1:], base) {
			if s := check(t, l, other); s.Locked || s.Failures != 0 {
				t.Errorf("key %d locked, key %d: %+v, want untouched", i, i+1+j, s)
			}
		}
	}
	for i, key := range keys {
		reset(t, l, key)
		wantCleared(t, l, key, fmt.Sprintf("key %d after Reset", i))
		for _, other := range keys[i+1:] {
			if s := check(t, l, other); !s.Locked {
				t.Errorf("Reset of key %d unlocked another: %+v", i, s)
			}
		}
	}
}

func testLockoutExpiry(t *testing.T, l permiso.Lockout, c *testclock.Clock, max int, d time.Duration) {
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

// testLockoutAttemptExpiry: places of attempts that never end (their
// instance died) are given back by themselves, so the account takes
// logins again.
func testLockoutAttemptExpiry(t *testing.T, l permiso.Lockout, c *testclock.Clock, max int, d time.Duration) {
	key := id("stuck")
	fail(t, l, key)
	for range max - 1 {
		admit(t, l, key)
	}
	if a := begin(t, l, key); a.Admitted() || a.State.Locked || a.State.Pending != max-1 || a.State.Failures != 1 {
		t.Fatalf("Begin with every place taken = %+v, want refused, not locked, %d in flight", a, max-1)
	}
	c.Advance(min(permiso.LockoutAttemptTTL, d) + 200*time.Millisecond)
	if s := check(t, l, key); s.Pending != 0 || s.Locked {
		t.Fatalf("after the places expired: %+v, want none in flight", s)
	}
	a := admit(t, l, key)
	succeed(t, l, key, a.ID)
	wantCleared(t, l, key, "after a success")
}

// testLockoutAdmission: failures and attempts in flight share the
// maximum; a refusal for attempts in flight is no lock and counts
// nothing; ending attempts frees their places.
func testLockoutAdmission(t *testing.T, l permiso.Lockout, _ *testclock.Clock, max int, _ time.Duration) {
	key := id("adm")
	var as []permiso.LockoutAttempt
	for i := range max {
		a := admit(t, l, key)
		if a.State.Pending != i+1 || a.State.Failures != 0 {
			t.Fatalf("attempt %d admitted with %+v, want %d in flight", i+1, a.State, i+1)
		}
		as = append(as, a)
	}
	for range 3 {
		a := begin(t, l, key)
		if a.Admitted() || a.State.Locked || a.State.Pending != max || a.State.Failures != 0 {
			t.Fatalf("attempt beyond the maximum = %+v, want refused (too many in flight), not locked", a)
		}
	}
	if s := check(t, l, key); s.Pending != max || s.Failures != 0 || s.Locked {
		t.Fatalf("refusals changed the state: %+v", s)
	}
	// A wrong password turns its place into a failure: still full.
	if s := failID(t, l, key, as[0].ID); s.Failures != 1 || s.Pending != max-1 || s.Locked {
		t.Fatalf("Fail = %+v, want 1 failure and %d in flight", s, max-1)
	}
	if a := begin(t, l, key); a.Admitted() {
		t.Fatalf("admitted with failures + in flight at the maximum: %+v", a)
	}
	// Undo frees a place without counting.
	undo(t, l, key, as[1].ID)
	if s := check(t, l, key); s.Failures != 1 || s.Pending != max-2 {
		t.Fatalf("after Undo: %+v, want 1 failure and %d in flight", s, max-2)
	}
	as[1] = admit(t, l, key)
	// A right password clears the failures: room again.
	succeed(t, l, key, as[1].ID)
	if s := check(t, l, key); s.Failures != 0 || s.Pending != max-2 || s.Locked {
		t.Fatalf("after Succeed: %+v, want no failures, %d in flight", s, max-2)
	}
	for _, a := range as[2:] {
		succeed(t, l, key, a.ID)
	}
	wantCleared(t, l, key, "after every attempt ended well")
}

// testLockoutSucceed: a right password resets the count and lifts a lock
// set while it was being checked, but the other attempts still being
// checked keep their places, and their wrong passwords count afterwards.
func testLockoutSucceed(t *testing.T, l permiso.Lockout, _ *testclock.Clock, max int, _ time.Duration) {
	key := id("ok")
	right := admit(t, l, key)
	other := admit(t, l, key)
	for range max - 2 {
		fail(t, l, key)
	}
	succeed(t, l, key, right.ID)
	if s := check(t, l, key); s.Failures != 0 || s.Pending != 1 || s.Locked {
		t.Fatalf("after Succeed: %+v, want no failures and the other attempt in flight", s)
	}
	if s := failID(t, l, key, other.ID); s.Failures != 1 || s.Pending != 0 {
		t.Fatalf("the other attempt's wrong password: %+v, want 1 failure", s)
	}
	// A success also lifts a lock set while it was in flight.
	right = admit(t, l, key)
	for range max - 2 {
		fail(t, l, key)
	}
	if s := failID(t, l, key, ""); !s.JustLocked {
		t.Fatalf("failure %d = %+v, want the lock", max, s)
	}
	succeed(t, l, key, right.ID)
	wantCleared(t, l, key, "after a success on a key locked meanwhile")
}

// testLockoutFailAfterReset: a wrong password counts even when its place
// is gone (the key was reset while it was being checked): every wrong
// password checked counts toward the lock.
func testLockoutFailAfterReset(t *testing.T, l permiso.Lockout, _ *testclock.Clock, _ int, _ time.Duration) {
	key := id("late")
	a := admit(t, l, key)
	reset(t, l, key)
	if s := failID(t, l, key, a.ID); s.Failures != 1 || s.Pending != 0 {
		t.Fatalf("Fail of an attempt whose place was reset: %+v, want 1 failure", s)
	}
	// It has ended: an Undo of it changes nothing.
	undo(t, l, key, a.ID)
	if s := check(t, l, key); s.Failures != 1 {
		t.Fatalf("Undo of an ended attempt changed the count: %+v", s)
	}
}

// beginConcurrently begins n attempts on key at once and hands each
// attempt to then, in the attempt's goroutine; a Begin that fails is
// reported.
func beginConcurrently(t *testing.T, l permiso.Lockout, key string, n int, then func(permiso.LockoutAttempt)) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			a, err := l.Begin(t.Context(), key)
			if err != nil {
				t.Errorf("Begin: %v", err)
				return
			}
			then(a)
		})
	}
	wg.Wait()
}

// testLockoutConcurrent: of N concurrent wrong passwords at most max are
// admitted, exactly max failures are counted and exactly one locks; the
// rest are refused, as locked or as too many in flight.
func testLockoutConcurrent(t *testing.T, l permiso.Lockout, _ *testclock.Clock, max int, _ time.Duration) {
	const n = 50
	key := id("user")
	var (
		mu                            sync.Mutex
		admitted, justLocked, refused int
		until                         time.Time
	)
	beginConcurrently(t, l, key, n, func(a permiso.LockoutAttempt) {
		if !a.Admitted() {
			mu.Lock()
			refused++
			mu.Unlock()
			return
		}
		s, err := l.Fail(t.Context(), key, a.ID)
		if err != nil {
			t.Errorf("Fail: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		admitted++
		if s.Locked && !s.JustLocked {
			t.Errorf("an admitted attempt's failure found the key locked: %+v", s)
		}
		if s.JustLocked {
			justLocked++
			if !until.IsZero() && !until.Equal(s.LockedUntil) {
				t.Errorf("two different locks: %v and %v", until, s.LockedUntil)
			}
			until = s.LockedUntil
		}
	})
	if admitted != max || justLocked != 1 || refused != n-max {
		t.Errorf("%d concurrent wrong passwords: %d admitted (and counted), %d locked, %d refused; want %d, 1, %d", n, admitted, justLocked, refused, max, n-max)
	}
	if s := check(t, l, key); !s.Locked || s.Failures != max || s.Pending != 0 {
		t.Errorf("after the race: %+v, want Locked with Failures %d, nothing in flight", s, max)
	}
}

// testLockoutConcurrentRight: N concurrent logins with the right password
// never lock the key and never count a failure: every refusal is "too
// many in flight", at least one gets through, and nothing is left.
func testLockoutConcurrentRight(t *testing.T, l permiso.Lockout, _ *testclock.Clock, max int, _ time.Duration) {
	const n = 50
	key := id("right")
	var (
		mu                 sync.Mutex
		successes, refused int
	)
	beginConcurrently(t, l, key, n, func(a permiso.LockoutAttempt) {
		if !a.Admitted() {
			if a.State.Locked || a.State.Failures != 0 || a.State.Pending < max {
				t.Errorf("refusal %+v, want too many in flight (%d), no lock, no failure", a.State, max)
			}
			mu.Lock()
			refused++
			mu.Unlock()
			return
		}
		if err := l.Succeed(t.Context(), key, a.ID); err != nil {
			t.Errorf("Succeed: %v", err)
			return
		}
		mu.Lock()
		successes++
		mu.Unlock()
	})
	if successes < 1 || successes+refused != n {
		t.Errorf("%d concurrent right passwords: %d succeeded, %d refused", n, successes, refused)
	}
	wantCleared(t, l, key, "after the race")
}

func testLockoutMaxOne(t *testing.T, l permiso.Lockout, _ *testclock.Clock, _ int, _ time.Duration) {
	key := id("user")
	a := admit(t, l, key)
	if b := begin(t, l, key); b.Admitted() || b.State.Locked {
		t.Fatalf("MAX 1, one in flight: Begin = %+v, want refused without a lock", b)
	}
	if s := failID(t, l, key, a.ID); !s.Locked || !s.JustLocked || s.Failures != 1 {
		t.Fatalf("MAX 1: first failure = %+v, want JustLocked", s)
	}
}

// testLockoutUndo: Undo gives back exactly the place of its attempt, and
// nothing else: not a failure, not a lock, not another attempt's place.
func testLockoutUndo(t *testing.T, l permiso.Lockout, _ *testclock.Clock, max int, _ time.Duration) {
	key := id("undo")
	fail(t, l, key)
	a, b := admit(t, l, key), admit(t, l, key)
	undo(t, l, key, a.ID)
	if got := check(t, l, key); got.Failures != 1 || got.Pending != 1 || got.Locked {
		t.Fatalf("after undoing one of two attempts: %+v, want 1 failure, 1 in flight", got)
	}
	undo(t, l, key, a.ID) // twice: nothing more
	undo(t, l, key, "no-such-attempt")
	if got := check(t, l, key); got.Failures != 1 || got.Pending != 1 {
		t.Fatalf("undoing a place twice, or one never held: %+v", got)
	}
	failID(t, l, key, b.ID)
	for range max - 2 {
		fail(t, l, key)
	}
	if got := check(t, l, key); !got.Locked {
		t.Fatalf("not locked after %d failures: %+v", max, got)
	}
	undo(t, l, key, b.ID) // ended: its failure stays, and the lock
	if got := check(t, l, key); !got.Locked || got.Failures != max {
		t.Fatalf("Undo of an ended attempt lifted the lock or a failure: %+v", got)
	}
}

// testLockoutUndoConcurrent: attempts that are admitted and then undone
// (all turned away before their password was checked) never lock the key
// nor leave anything behind, however many run at once.
func testLockoutUndoConcurrent(t *testing.T, l permiso.Lockout, _ *testclock.Clock, _ int, _ time.Duration) {
	key := id("undo-conc")
	beginConcurrently(t, l, key, 40, func(a permiso.LockoutAttempt) {
		if a.State.Locked || a.State.Failures != 0 {
			t.Errorf("Begin = %+v, want no lock and no failure", a)
		}
		if err := l.Undo(context.Background(), key, a.ID); err != nil {
			t.Error(err)
		}
	})
	if got := check(t, l, key); got != (permiso.LockoutState{}) {
		t.Errorf("after 40 admitted-and-undone attempts: %+v, want nothing left", got)
	}
}
