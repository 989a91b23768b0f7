package sharedstatetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
)

// NewOnceStore returns a fresh, empty once-store for one test and the
// clock it runs on, isolated like NewRevocationStore's.
type NewOnceStore func(t *testing.T) (permiso.OnceStore, *testclock.Clock)

// RunOnce runs the conformance suite for permiso.OnceStore: a key is
// claimed once, by exactly one of concurrent callers, until its ttl ends;
// keys and stores are isolated; empty keys and ttls are EINVALID.
func RunOnce(t *testing.T, newStore NewOnceStore) {
	t.Helper()
	runSuite(t, newStore, []conformance[permiso.OnceStore]{
		{"ClaimOnce", testClaimOnce},
		{"Concurrent", testClaimConcurrent},
		{"Expiry", testClaimExpiry},
		{"Invalid", testClaimInvalid},
	}, "StoresIsolated", func(t *testing.T, a, b permiso.OnceStore, _ *testclock.Clock) {
		k := id("iso")
		okA, _ := a.Claim(context.Background(), k, time.Minute)
		okB, _ := b.Claim(context.Background(), k, time.Minute)
		if !okA || !okB {
			t.Fatalf("isolated stores: %v, %v", okA, okB)
		}
	})
}

func testClaimOnce(t *testing.T, s permiso.OnceStore, _ *testclock.Clock) {
	ctx := context.Background()
	k := id("otp")
	if ok, err := s.Claim(ctx, k, time.Minute); err != nil || !ok {
		t.Fatalf("first claim: %v, %v", ok, err)
	}
	if ok, err := s.Claim(ctx, k, time.Minute); err != nil || ok {
		t.Fatalf("second claim: %v, %v (want false)", ok, err)
	}
	if ok, err := s.Claim(ctx, id("other"), time.Minute); err != nil || !ok {
		t.Fatalf("another key: %v, %v", ok, err)
	}
}

func testClaimConcurrent(t *testing.T, s permiso.OnceStore, _ *testclock.Clock) {
	k := id("race")
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Claim(context.Background(), k, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d of %d concurrent claims won, want 1", won, n)
	}
}

func testClaimExpiry(t *testing.T, s permiso.OnceStore, c *testclock.Clock) {
	ctx := context.Background()
	k := id("exp")
	if ok, _ := s.Claim(ctx, k, time.Second); !ok {
		t.Fatal("first claim refused")
	}
	c.Advance(1100 * time.Millisecond)
	if ok, err := s.Claim(ctx, k, time.Second); err != nil || !ok {
		t.Fatalf("claim after the ttl: %v, %v", ok, err)
	}
}

func testClaimInvalid(t *testing.T, s permiso.OnceStore, _ *testclock.Clock) {
	for _, tc := range []struct {
		k   string
		ttl time.Duration
	}{{"", time.Minute}, {id("k"), 0}, {id("k"), -time.Second}} {
		if _, err := s.Claim(context.Background(), tc.k, tc.ttl); !errors.Is(err, permiso.ErrInvalid) {
			t.Errorf("Claim(%q, %v): %v, want EINVALID", tc.k, tc.ttl, err)
		}
	}
}
