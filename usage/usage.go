// Package usage keeps service clients' last_used and total_requests
// without a database write per request (docs/architecture.md, "Performance by design"): ClientUsed only adds to
// an in-memory tally; a background loop writes the tallies in one
// ClientStore.AddClientUsage call every flush interval and on Close, so a
// graceful stop loses nothing.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// DefaultFlushInterval is how often the tallies are written by default.
const DefaultFlushInterval = 5 * time.Second

// Options configure a Counter.
type Options struct {
	// FlushInterval is how often tallies are written; zero means
	// DefaultFlushInterval.
	FlushInterval time.Duration
	Logger        *slog.Logger
}

// Counter batches client usage. It implements oauth2.UsageRecorder.
type Counter struct {
	store permiso.ClientStore
	opts  Options

	mu      sync.Mutex
	pending map[uuid.UUID]permiso.ClientUsage

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New starts a Counter over store. Call Close to flush and stop it.
func New(store permiso.ClientStore, opts Options) *Counter {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Counter{store: store, opts: opts, pending: make(map[uuid.UUID]permiso.ClientUsage),
		stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// ClientUsed counts one use of the client with row id id at at. It never
// blocks on the database.
func (c *Counter) ClientUsed(id uuid.UUID, at time.Time) {
	c.mu.Lock()
	u := c.pending[id]
	u.Requests++
	if at.After(u.LastUsed) {
		u.LastUsed = at.UTC()
	}
	c.pending[id] = u
	c.mu.Unlock()
}

// Pending returns the usage of id counted but not yet written, so that
// readers can show exact figures between flushes.
func (c *Counter) Pending(id uuid.UUID) (permiso.ClientUsage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.pending[id]
	return u, ok
}

// Flush writes the current tallies now. A failed write keeps them for the
// next attempt (merged with what was counted meanwhile).
func (c *Counter) Flush(ctx context.Context) error {
	c.mu.Lock()
	batch := c.pending
	c.pending = make(map[uuid.UUID]permiso.ClientUsage, len(batch))
	c.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := c.store.AddClientUsage(ctx, batch)
	if err != nil {
		c.mu.Lock()
		for id, u := range batch {
			p := c.pending[id]
			p.Requests += u.Requests
			if u.LastUsed.After(p.LastUsed) {
				p.LastUsed = u.LastUsed
			}
			c.pending[id] = p
		}
		c.mu.Unlock()
	}
	return err
}

// Close writes what is pending and stops the loop. ClientUsed must not be
// called after Close.
func (c *Counter) Close() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}

func (c *Counter) loop() {
	defer close(c.done)
	t := time.NewTicker(c.opts.FlushInterval)
	defer t.Stop()
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Flush(ctx); err != nil {
			c.opts.Logger.Error("client usage not written; kept for the next flush", "error", err)
		}
	}
	for {
		select {
		case <-t.C:
			flush()
		case <-c.stop:
			flush()
			return
		}
	}
}
