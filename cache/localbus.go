package cache

import (
	"context"
	"sync"

	"github.com/permiso/permiso"
)

// LocalBus is the permiso.ChangeBus of one process: Publish calls every
// subscriber of this bus at once, on the publisher's goroutine. It is what
// serve uses without REDIS_URL (the cache then hears only its own writes;
// other processes' writes are seen within the TTL) and what tests use to
// connect several Stores. It never loses a message, so it reports
// ChangeResync only once, when a subscription starts.
type LocalBus struct {
	mu   sync.RWMutex
	next int
	subs map[int]*localSub
}

type localSub struct {
	// mu is held while fn runs, so that stop can wait for it.
	mu      sync.Mutex
	fn      func(permiso.Change)
	stopped bool
}

var _ permiso.ChangeBus = (*LocalBus)(nil)

// NewLocalBus returns an empty bus.
func NewLocalBus() *LocalBus { return &LocalBus{subs: map[int]*localSub{}} }

// Publish delivers c to every subscriber before it returns.
func (b *LocalBus) Publish(_ context.Context, c permiso.Change) error {
	b.mu.RLock()
	subs := make([]*localSub, 0, len(b.subs))
	for _, s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.RUnlock()
	for _, s := range subs {
		s.deliver(c)
	}
	return nil
}

// Subscribe registers fn and calls it with ChangeResync before returning.
func (b *LocalBus) Subscribe(_ context.Context, fn func(permiso.Change)) (func(), error) {
	s := &localSub{fn: fn}
	b.mu.Lock()
	id := b.next
	b.next++
	b.subs[id] = s
	b.mu.Unlock()
	s.deliver(permiso.Change{Kind: permiso.ChangeResync})
	stop := sync.OnceFunc(func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
	})
	return stop, nil
}

func (s *localSub) deliver(c permiso.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.fn(c)
	}
}
