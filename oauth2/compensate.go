package oauth2

import (
	"context"
	"errors"
	"sync"
	"time"
)

// compensationTimeout bounds one step of compensating work: a write that
// settles what a request already did (a lockout place given back or
// counted, an unconfirmed session revoked, a rotation taken back, a login
// recorded). It is well below permiso.LockoutAttemptTTL, after which a
// place that was never given back expires by itself.
const compensationTimeout = 5 * time.Second

// compensating returns the context of compensating work for the request
// context ctx: its values (request metadata, fresh reads) without its
// cancellation, bounded by compensationTimeout. Such work must complete
// even when the client went away (permiso.ClientGone): else an abandoned
// login would leave its lockout place taken, or a session whose tokens
// were never delivered live (docs/abuse-resistance.md, "Lockout").
func compensating(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), compensationTimeout)
}

// settle runs fn, compensating work keyed by key, to its end even when
// the client went away (compensating), and once at a time per key: the
// request that starts it waits for it and returns its outcome; a request
// that finds the same key's work in flight joins it, waits for its outcome
// while its own ctx lasts, and returns ctx's error when ctx ends first. A
// flood of presentations of one replayed token whose clients hang up at
// once then costs one revocation at a time for its session, not one
// detached write per request (docs/security-model.md, "Refresh token
// reuse").
func (s *Service) settle(ctx context.Context, key string, fn func(context.Context) error) error {
	s.settling.mu.Lock()
	if w, ok := s.settling.inFlight[key]; ok {
		s.settling.mu.Unlock()
		select {
		case <-w.done:
			return w.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Until fn returns, its outcome is a failure: a panic in fn leaves
	// the requests that joined it an error, and the key free again.
	w := &settlement{done: make(chan struct{}), err: errSettlementUnfinished}
	if s.settling.inFlight == nil {
		s.settling.inFlight = map[string]*settlement{}
	}
	s.settling.inFlight[key] = w
	s.settling.mu.Unlock()
	defer func() {
		s.settling.mu.Lock()
		delete(s.settling.inFlight, key)
		s.settling.mu.Unlock()
		close(w.done)
	}()

	cctx, cancel := compensating(ctx)
	defer cancel()
	w.err = fn(cctx)
	return w.err
}

// errSettlementUnfinished is the outcome of a compensating work that
// ended without returning (settle).
var errSettlementUnfinished = errors.New("compensating work did not finish")

// settlements are the compensating works in flight, by key (settle).
type settlements struct {
	mu       sync.Mutex
	inFlight map[string]*settlement
}

// settlement is one compensating work in flight: err is its outcome once
// done is closed.
type settlement struct {
	done chan struct{}
	err  error
}
