package inprocess_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/sharedstatetest"
)

// fakeClock is the fake clock the suites run on, from a fixed start that
// is not a whole second.
func fakeClock() *testclock.Clock {
	return testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC))
}

func TestLimiter(t *testing.T) {
	sharedstatetest.RunRateLimiter(t, func(t *testing.T) (permiso.RateLimiter, *testclock.Clock) {
		c := fakeClock()
		return inprocess.NewLimiter(inprocess.WithNow(c.Now)), c
	})
}

func TestLockout(t *testing.T) {
	sharedstatetest.RunLockout(t, func(t *testing.T, max int, d time.Duration) (permiso.Lockout, *testclock.Clock) {
		c := fakeClock()
		return inprocess.NewLockout(max, d, inprocess.WithNow(c.Now)), c
	})
}

// TestAbuseRealClock runs both suites on the wall clock, so the default
// time source is exercised (the expiry subtests sleep about 2 s).
func TestAbuseRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps; skipped with -short")
	}
	t.Run("Limiter", func(t *testing.T) {
		sharedstatetest.RunRateLimiter(t, func(t *testing.T) (permiso.RateLimiter, *testclock.Clock) {
			return inprocess.NewLimiter(), testclock.Real()
		})
	})
	t.Run("Lockout", func(t *testing.T) {
		sharedstatetest.RunLockout(t, func(t *testing.T, max int, d time.Duration) (permiso.Lockout, *testclock.Clock) {
			return inprocess.NewLockout(max, d), testclock.Real()
		})
	})
}

// TestLimiterMemoryBounded checks that keys whose entries all expired are
// swept by later writes.
func TestLimiterMemoryBounded(t *testing.T) {
	c := fakeClock()
	l := inprocess.NewLimiter(inprocess.WithNow(c.Now))
	ctx := t.Context()
	lim := permiso.Limit{Count: 3, Period: time.Second}
	for i := range 20_000 {
		if _, err := l.Allow(ctx, fmt.Sprint("ip-", i), lim); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			c.Advance(time.Second)
		}
		if n := l.Len(); n > 2*100+1024 {
			t.Fatalf("after %d requests Len = %d: expired keys are not swept", i, n)
		}
	}
}

// TestLockoutMemoryBounded checks that keys of which nothing is left (a
// failure past its window, a place in flight past its lifetime) are swept
// by later writes.
func TestLockoutMemoryBounded(t *testing.T) {
	c := fakeClock()
	l := inprocess.NewLockout(5, time.Minute, inprocess.WithNow(c.Now))
	ctx := t.Context()
	for i := range 20_000 {
		if _, err := l.Fail(ctx, fmt.Sprint("user-", i), ""); err != nil {
			t.Fatal(err)
		}
		if a, err := l.Begin(ctx, fmt.Sprint("stuck-", i)); err != nil || !a.Admitted() {
			t.Fatalf("Begin: %+v, %v", a, err)
		}
		if i%100 == 0 {
			c.Advance(time.Minute)
		}
		if n := l.Len(); n > 2*(2*100+1024) {
			t.Fatalf("after %d failures Len = %d: expired entries are not swept", i, n)
		}
	}
}

func TestOnce(t *testing.T) {
	sharedstatetest.RunOnce(t, func(t *testing.T) (permiso.OnceStore, *testclock.Clock) {
		c := fakeClock()
		return inprocess.NewOnce(inprocess.WithNow(c.Now)), c
	})
}
