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

func TestRevocations(t *testing.T) {
	sharedstatetest.RunRevocation(t, func(t *testing.T) (permiso.RevocationStore, *testclock.Clock) {
		c := fakeClock()
		return inprocess.NewRevocations(inprocess.WithNow(c.Now)), c
	})
}

// TestRevocationsRealClock runs the suite on the wall clock too, so the
// default time source is exercised (the expiry subtest sleeps ~4 s).
func TestRevocationsRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps; skipped with -short")
	}
	sharedstatetest.RunRevocation(t, func(t *testing.T) (permiso.RevocationStore, *testclock.Clock) {
		return inprocess.NewRevocations(), testclock.Real()
	})
}

// TestRevocationsMemoryBounded checks that expired entries are swept by
// later writes, so a burst of revocations does not stay in memory forever.
func TestRevocationsMemoryBounded(t *testing.T) {
	clock := testclock.New(time.Unix(1_900_000_000, 0))
	r := inprocess.NewRevocations(inprocess.WithNow(clock.Now))
	ctx := t.Context()
	const burst = 10_000
	for i := range burst {
		if err := r.RevokeToken(ctx, fmt.Sprint("burst-", i), clock.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Len(); n > burst {
		t.Fatalf("Len = %d, want <= %d", n, burst)
	}
	clock.Advance(2 * time.Minute)
	// Keep writing short-lived entries: the map must not grow beyond about
	// twice the live entries plus the sweep floor.
	for i := range 5 * burst {
		if err := r.RevokeSession(ctx, fmt.Sprint("s-", i), clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			clock.Advance(time.Second)
		}
		if n := r.Len(); n > 2*burst+1024 {
			t.Fatalf("after %d writes Len = %d: expired entries are not swept", i, n)
		}
	}
	clock.Advance(time.Hour)
	if removed := r.Sweep(); removed == 0 {
		t.Fatal("Sweep removed nothing")
	}
	if n := r.Len(); n != 0 {
		t.Fatalf("Len after Sweep = %d, want 0", n)
	}
}

func BenchmarkIsRevoked(b *testing.B) {
	sharedstatetest.BenchmarkIsRevoked(b, inprocess.NewRevocations(), time.Now)
}
