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
	t.Run("ClaimOnce", func(t *testing.T) {
		t.Parallel()
		s, _ := newStore(t)
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
	})
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s, _ := newStore(t)
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
	})
	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		s, c := newStore(t)
		ctx := context.Background()
		k := id("exp")
		if ok, _ := s.Claim(ctx, k, time.Second); !ok {
			t.Fatal("first claim refused")
		}
		c.Advance(1100 * time.Millisecond)
		if ok, err := s.Claim(ctx, k, time.Second); err != nil || !ok {
			t.Fatalf("claim after the ttl: %v, %v", ok, err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s, _ := newStore(t)
		for _, tc := range []struct {
			k   string
			ttl time.Duration
		}{{"", time.Minute}, {id("k"), 0}, {id("k"), -time.Second}} {
			if _, err := s.Claim(context.Background(), tc.k, tc.ttl); !errors.Is(err, permiso.ErrInvalid) {
				t.Errorf("Claim(%q, %v): %v, want EINVALID", tc.k, tc.ttl, err)
			}
		}
	})
	t.Run("StoresIsolated", func(t *testing.T) {
		t.Parallel()
		a, _ := newStore(t)
		b, _ := newStore(t)
		k := id("iso")
		okA, _ := a.Claim(context.Background(), k, time.Minute)
		okB, _ := b.Claim(context.Background(), k, time.Minute)
		if !okA || !okB {
			t.Fatalf("isolated stores: %v, %v", okA, okB)
		}
	})
}
