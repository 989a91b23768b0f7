package oauth2

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// TestSettleOnceAtATimePerKey: compensating work runs to its end when its
// client went away, and requests that find the same key's work in flight
// join it instead of starting more detached work (docs/security-model.md,
// "Refresh token reuse": a flood of replays whose clients hang up costs
// one revocation at a time per session).
func TestSettleOnceAtATimePerKey(t *testing.T) {
	s := &Service{}
	var runs atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	finished := make(chan error, 1)
	work := func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			close(started)
			<-release
			finished <- ctx.Err() // the work's own context, not the request's
		}
		return nil
	}

	// The request that starts the work waits for it, even after its
	// client went away.
	first, leave := context.WithCancel(t.Context())
	firstErr := make(chan error, 1)
	go func() { firstErr <- s.settle(first, "reuse:a", work) }()
	<-started
	leave()

	// Presentations whose clients hang up while the work is in flight:
	// each returns with its cancellation and starts nothing.
	for range 20 {
		gone, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.settle(gone, "reuse:a", work); !errors.Is(err, context.Canceled) {
			t.Fatalf("joined request: %v, want its cancellation", err)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d runs while one was in flight, want 1", n)
	}

	close(release)
	if err := <-finished; err != nil {
		t.Fatalf("the work was cut off with its client: %v", err)
	}
	if err := <-firstErr; err != nil {
		t.Fatalf("first request: %v, want the work's outcome", err)
	}
	// Once it has ended, the next presentation settles again.
	if err := s.settle(t.Context(), "reuse:a", work); err != nil || runs.Load() != 2 {
		t.Fatalf("%v, %d runs; want a second run", err, runs.Load())
	}
}

// TestSettleFreesItsKeyAfterAPanic: compensating work that panics leaves
// its key free, so that the next presentation settles again instead of
// joining work that never ends.
func TestSettleFreesItsKeyAfterAPanic(t *testing.T) {
	s := &Service{}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		_ = s.settle(t.Context(), "reuse:b", func(context.Context) error { panic("store") })
	}()
	ran := false
	if err := s.settle(t.Context(), "reuse:b", func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("%v, ran %v; want the next work run", err, ran)
	}
}
