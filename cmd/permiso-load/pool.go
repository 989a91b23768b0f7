package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// A service client's own per-minute limit is a sliding window of 60 slots
// of one second (docs/abuse-resistance.md, "Algorithm: sliding window of
// slots"): a token request counts from its admission until its slot's end
// has left the window, at least a minute and at most a minute and one
// slot. The pool therefore gives each client clientBudget tokens in a row
// and takes it again only reuseAfter later: by then every one of those
// requests has left the window, even one admitted a few seconds after it
// was handed out.
const (
	clientPeriod = time.Minute
	clientSlot   = clientPeriod / 60
	reuseAfter   = clientPeriod + clientSlot + 5*time.Second

	// calibrationClients is the pool of the calibration: at most
	// calibrationClients × clientBudget token requests, for at most
	// calibrationTime.
	calibrationClients = 4
	calibrationTime    = time.Second
	// poolMargin is how much faster than the calibration the measured
	// part may run before the pool has to grow during it.
	poolMargin = 1.5
	// maxPoolClients bounds the clients of one run, top-ups included.
	maxPoolClients = 10000
)

// errStop ends a worker of measure without counting a request: the
// calibration's budget is spent.
var errStop = errors.New("stop")

// poolSize is the number of fresh service clients the measured part of
// client-credentials needs at rate tokens a second for d with concurrency
// workers: every token of up to reuseAfter (the clients are not reused
// within it) at poolMargin times the rate, plus one request in flight per
// worker after d, in clientBudget tokens per client, plus one client for
// the budget left unspent by the calibration's last one.
func poolSize(rate float64, d time.Duration, concurrency int) int {
	window := min(d, reuseAfter).Seconds()
	tokens := rate*poolMargin*window + float64(concurrency)
	n := int(math.Ceil(tokens/clientBudget)) + 1
	return min(max(n, 1), maxPoolClients)
}

// clientPool hands out the service clients of the client-credentials
// scenario: request i of the run uses the client of position
// i / clientBudget, so a client gets clientBudget requests in a row. A new
// position takes the longest-idle client that left its last position at
// least reuseAfter ago, or a fresh one; when there is none, it creates a
// client there and then (a top-up, counted in added). No client is ever
// sent more than clientBudget requests within reuseAfter, so the scenario
// never meets a client's own limit, however fast the server.
type clientPool struct {
	create func(context.Context) (poolClient, error)
	now    func() time.Time

	next  atomic.Int64                 // requests handed out
	lanes atomic.Pointer[[]poolClient] // client of each position so far

	mu    sync.Mutex
	idle  []idleClient // FIFO: fresh clients first, then in order of release
	added int          // clients created while handing out
	total int          // clients in the pool
}

type idleClient struct {
	c     poolClient
	since time.Time // zero for a client never used
}

func newClientPool(create func(context.Context) (poolClient, error), now func() time.Time) *clientPool {
	p := &clientPool{create: create, now: now}
	p.lanes.Store(new([]poolClient))
	return p
}

// add puts fresh clients into the pool.
func (p *clientPool) add(cs ...poolClient) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Fresh clients go before the released ones, which are not free yet.
	i := 0
	for i < len(p.idle) && p.idle[i].since.IsZero() {
		i++
	}
	idle := make([]idleClient, 0, len(cs)+len(p.idle))
	idle = append(idle, p.idle[:i]...)
	for _, c := range cs {
		idle = append(idle, idleClient{c: c})
	}
	p.idle = append(idle, p.idle[i:]...)
	p.total += len(cs)
}

// pick returns the client for the next request.
func (p *clientPool) pick(ctx context.Context) (poolClient, error) {
	return p.pickWithin(ctx, math.MaxInt64)
}

// pickWithin is pick for the first limit requests of the run; after them
// it returns errStop.
func (p *clientPool) pickWithin(ctx context.Context, limit int64) (poolClient, error) {
	i := p.next.Add(1) - 1
	if i >= limit {
		return poolClient{}, errStop
	}
	pos := int(i / clientBudget)
	if lanes := *p.lanes.Load(); pos < len(lanes) {
		return lanes[pos], nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		lanes := *p.lanes.Load()
		if pos < len(lanes) {
			return lanes[pos], nil
		}
		if err := p.assign(ctx, lanes); err != nil {
			return poolClient{}, err
		}
	}
}

// assign gives the next position a client (with p.mu held).
func (p *clientPool) assign(ctx context.Context, lanes []poolClient) error {
	now := p.now()
	if n := len(lanes); n > 0 {
		p.idle = append(p.idle, idleClient{c: lanes[n-1], since: now})
	}
	var c poolClient
	if len(p.idle) > 0 && (p.idle[0].since.IsZero() || now.Sub(p.idle[0].since) >= reuseAfter) {
		c = p.idle[0].c
		p.idle = p.idle[1:]
	} else {
		if p.total >= maxPoolClients {
			return fmt.Errorf("the client-credentials pool would need more than %d service clients", maxPoolClients)
		}
		var err error
		if c, err = p.create(ctx); err != nil {
			return fmt.Errorf("add a service client to the pool: %w", err)
		}
		p.added++
		p.total++
	}
	// Readers only read below their own length: appending in place (when
	// there is room) never changes what they can see.
	next := append(lanes, c)
	p.lanes.Store(&next)
	return nil
}

// handedOut is the number of requests picked so far.
func (p *clientPool) handedOut() int64 { return p.next.Load() }

// counts returns the pool's size and how many of its clients were created
// while handing out.
func (p *clientPool) counts() (total, added int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total, p.added
}
