package redis

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// leases are the blocks of requests this instance has counted ahead in
// Redis for leased limits (permiso.CheckBatch.AllowLeased: RATE_LIMIT_API;
// AllowAllLeased: a service client's minute and hour limits together;
// docs/abuse-resistance.md, "Leases"). A lease is one run of limitScript
// that counts up to its size at once, in every key, in the slot after the
// current one of each key's limit; the instance then spends those requests
// locally, without a round trip, during at most one slot of the
// narrowest-slotted limit (leaseSlot). Each request is thus counted in
// Redis, in every key, before it is spent and until at least a period of
// that key's limit after, so no window of any of the limits ever admits
// more than its count, across instances. Requests a lease did not spend
// are given back by a later lease of the key (when their slot still
// exists), or leave with their slot.
//
// A key's first lease asks for one request; each lease spent before it
// ran out asks for twice as many next time, up to one slot's share of the
// tightest limit (leaseCap), and one that ran out with requests left asks
// for half as many. So a key seen once costs what Allow costs, and a busy
// one one round trip per lease. One run per key asks for a lease at a
// time: the requests that find no lease left while it is in flight ask
// for one request each, so requests arriving together count at most one
// lease ahead of those spent.
type leases struct {
	mu      sync.Mutex
	m       map[string]*lease
	sweepAt int
}

// lease is the state of one key, or of several keys counted together
// (AllowAllLeased), under the first of them.
type lease struct {
	keys   []string
	limits []permiso.Limit
	// blocks are the leases Redis granted that still have requests left,
	// oldest first. Leases taken concurrently by this instance (their
	// replies overlapping) are separate blocks, each spent within its own
	// time.
	blocks []block
	// busyUntil is when the last block granted expires: a lease needed
	// before then was spent in time.
	busyUntil time.Time
	// back are requests of expired blocks not given back yet.
	back []block
	// size is how many requests the next lease asks for.
	size int
	// res is Redis's latest answer, one result per key, at taken.
	res   []permiso.LimitResult
	taken time.Time
	// inflight counts the runs this instance sent for the lease whose
	// reply has not been recorded, or was a refusal still waiting for
	// them (see refused); changed is closed, and replaced, whenever one
	// is recorded.
	inflight int
	changed  chan struct{}
	// leasing is set while a run asking for more than one request is in
	// flight: the instance's other requests that find no lease left
	// meanwhile ask for one each (see take).
	leasing bool
}

// maxRefusalWait bounds how long a refused lease run waits for the
// instance's other runs of the key (see record).
const maxRefusalWait = time.Second

// block is one granted lease: left requests counted, in the slot ending
// at ends[i] of key i, not spent; they may be spent until expires (local
// monotonic time).
type block struct {
	ends    []int64
	left    int
	expires time.Time
}

// minLeaseSweep is the number of leases below which the map is not swept.
const minLeaseSweep = 1024

func newLeases() *leases {
	return &leases{m: make(map[string]*lease), sweepAt: minLeaseSweep}
}

// leaseCap is the most requests one lease of limits counts: one slot's
// share of the tightest (1 for any limit below 2 × permiso.LimitSlots).
func leaseCap(limits []permiso.Limit) int {
	c := 0
	for _, l := range limits {
		if !l.Disabled() {
			n := max(1, l.Count/permiso.LimitSlots)
			if c == 0 || n < c {
				c = n
			}
		}
	}
	return max(1, c)
}

// leaseSlot is how long a lease of limits may be spent: the narrowest
// slot among them (one second when a per-minute limit is among them).
func leaseSlot(limits []permiso.Limit) time.Duration {
	var s time.Duration
	for _, l := range limits {
		if !l.Disabled() && (s == 0 || l.Slot() < s) {
			s = l.Slot()
		}
	}
	return s
}

// matches reports whether l is the lease of keys under limits.
func (l *lease) matches(keys []string, limits []permiso.Limit) bool {
	return l != nil && slices.Equal(l.keys, keys) && slices.Equal(l.limits, limits)
}

// take spends one request of the lease of keys when it has one left: it
// returns the request's results (approximate: what Redis reported when
// the lease was taken, plus what this instance holds unspent; Reset
// counted down since). Otherwise it returns how many requests the next
// lease should ask for, what an expired lease gives back (one per key,
// nil for nothing), and the lease the run belongs to (nil for a new
// one), to be passed to record or abandon.
func (ls *leases) take(keys []string, limits []permiso.Limit, now time.Time) (res []permiso.LimitResult, ok bool, want int, give []giveBack, owner *lease) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[keys[0]]
	if !l.matches(keys, limits) {
		// A new key, or a limit changed (by an admin, for a client):
		// what a lease of the former limits holds is not spent.
		return nil, false, 1, nil, nil
	}
	expired := l.expire(now)
	if res, ok := l.spend(limits, now); ok {
		return res, true, 0, nil, nil
	}
	want = 1
	if !l.leasing {
		switch {
		case expired:
			l.size = max(1, l.size/2)
		case now.Before(l.busyUntil):
			// Spent before its time: the key is busy.
			l.size = min(2*l.size, leaseCap(limits))
		}
		want = l.size
		l.leasing = want > 1
	}
	if len(l.back) > 0 {
		b := l.back[0]
		l.back = slices.Delete(l.back, 0, 1)
		give = make([]giveBack, len(keys))
		for i := range give {
			give[i] = giveBack{end: b.ends[i], n: b.left}
		}
	}
	l.inflight++
	return nil, false, want, give, l
}

// abandon ends a run of owner's lease, asking for want requests, that got
// no reply.
func (ls *leases) abandon(owner *lease, want int) {
	if owner == nil {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	owner.done(want)
}

// unsend ends a run of owner's lease, asking for want requests, that was
// never sent: the requests it was to give back (give, from take) are given
// back by a later run.
func (ls *leases) unsend(owner *lease, want int, give []giveBack) {
	if owner == nil {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if give != nil {
		b := block{ends: make([]int64, len(give)), left: give[0].n}
		for i, g := range give {
			b.ends[i] = g.end
		}
		// It was the oldest: take gives back l.back[0] first.
		owner.back = slices.Insert(owner.back, 0, b)
	}
	owner.done(want)
}

// done ends one run in flight, asking for want requests, and wakes the
// refused runs waiting.
func (l *lease) done(want int) {
	if want > 1 {
		l.leasing = false
	}
	l.inflight--
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// expire moves the blocks that expired at now to the requests to give
// back, and reports whether one had requests left.
func (l *lease) expire(now time.Time) bool {
	expired := false
	live := l.blocks[:0]
	for _, b := range l.blocks {
		switch {
		case now.Before(b.expires):
			live = append(live, b)
		case b.left > 0:
			expired = true
			l.back = appendBack(l.back, b)
		}
	}
	clear(l.blocks[len(live):])
	l.blocks = live
	return expired
}

// spend spends one request of l's oldest live block, if any, and returns
// the request's results.
func (l *lease) spend(limits []permiso.Limit, now time.Time) ([]permiso.LimitResult, bool) {
	l.expire(now)
	if len(l.blocks) == 0 {
		return nil, false
	}
	// The oldest block expires first: spend it first.
	l.blocks[0].left--
	if l.blocks[0].left == 0 {
		l.blocks = slices.Delete(l.blocks, 0, 1)
	}
	return l.results(limits, now), true
}

// appendBack adds b's unspent requests to back, merged with those of the
// same slots.
func appendBack(back []block, b block) []block {
	for i := range back {
		if slices.Equal(back[i].ends, b.ends) {
			back[i].left += b.left
			return back
		}
	}
	return append(back, b)
}

// left is what l's blocks hold unspent.
func (l *lease) left() int {
	n := 0
	for _, b := range l.blocks {
		n += b.left
	}
	return n
}

// results are the results of a request answered by l at now: Redis's
// latest answer, plus what l holds unspent (at most the count less the
// request itself), Reset counted down.
func (l *lease) results(limits []permiso.Limit, now time.Time) []permiso.LimitResult {
	left := l.left()
	out := make([]permiso.LimitResult, len(l.res))
	for i, r := range l.res {
		r.Reset = max(0, r.Reset-now.Sub(l.taken))
		if !limits[i].Disabled() {
			r.Remaining = min(r.Remaining+left, limits[i].Count-1)
		}
		out[i] = r
	}
	return out
}

// record keeps the lease Redis granted for keys (reply r of a script sent
// at sent for owner's lease, asking for want requests); the request that
// asked for it spends one. It returns the request's results.
//
// A refusal is never leased. But when the instance's own leases of the
// keys took the room (several of its requests found no lease left and
// each asked Redis at once), a refused request spends one of theirs
// instead, waiting for the replies of the instance's other runs of the
// keys still in flight (at most maxRefusalWait, or until ctx ends):
// otherwise one instance would refuse a client requests that it has
// counted and holds unspent.
func (ls *leases) record(ctx context.Context, keys []string, limits []permiso.Limit, want int, sent time.Time, owner *lease, r scriptReply) []permiso.LimitResult {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[keys[0]]
	if !l.matches(keys, limits) {
		l = &lease{keys: keys, limits: limits, size: want}
		ls.m[keys[0]] = l
		ls.sweepLocked(sent)
	}
	if owner != l {
		owner = nil // a run of a lease since replaced
	}
	if r.granted < 1 {
		return ls.refused(ctx, l, owner, want, limits, r)
	}
	if owner != nil {
		owner.done(want)
	}
	if len(l.blocks) > 0 {
		// Another lease of the keys is live, whose reply may have come
		// first although Redis counted it after this one: the lower
		// Remaining is the newer count (it includes the other lease), so
		// Remaining plus what the blocks hold stays below the limit.
		for i := range r.results {
			r.results[i].Remaining = min(r.results[i].Remaining, l.res[i].Remaining)
		}
	}
	l.res, l.taken = r.results, sent
	expires := sent.Add(leaseSlot(limits))
	if expires.After(l.busyUntil) {
		l.busyUntil = expires
	}
	if r.granted > 1 {
		// Blocks stay ordered by expiry: a reply may come after that of a
		// lease sent later.
		b := block{ends: r.ends, left: r.granted - 1, expires: expires}
		i := len(l.blocks)
		for i > 0 && l.blocks[i-1].expires.After(expires) {
			i--
		}
		l.blocks = slices.Insert(l.blocks, i, b)
	}
	return l.results(limits, sent)
}

// refused answers a run Redis refused (r), with ls.mu held: from a live
// block of l when there is one, after waiting for l's other runs in
// flight; else with the refusal.
func (ls *leases) refused(ctx context.Context, l, owner *lease, want int, limits []permiso.Limit, r scriptReply) []permiso.LimitResult {
	var timeout <-chan time.Time
	for {
		now := time.Now()
		if res, ok := l.spend(limits, now); ok {
			if owner != nil {
				owner.done(want)
			}
			return res
		}
		// This run no longer counts as in flight: a refused run never
		// waits for another refused run.
		others := l.inflight
		if owner != nil {
			others--
		}
		if others <= 0 || ls.m[l.keys[0]] != l {
			if owner != nil {
				owner.done(want)
			}
			return r.results
		}
		if timeout == nil {
			t := time.NewTimer(maxRefusalWait)
			defer t.Stop()
			timeout = t.C
		}
		if owner != nil {
			owner.done(want)
			owner = nil
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		ls.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
		case <-timeout:
		}
		ls.mu.Lock()
		if ctx.Err() != nil {
			return r.results
		}
		select {
		case <-timeout:
			return r.results
		default:
		}
	}
}

// sweepLocked forgets the leases whose blocks all expired, once the map
// has doubled since the last sweep: their unspent requests leave with
// their slot.
func (ls *leases) sweepLocked(now time.Time) {
	if len(ls.m) < ls.sweepAt {
		return
	}
	for k, l := range ls.m {
		if !now.Before(l.busyUntil) {
			delete(ls.m, k)
		}
	}
	ls.sweepAt = max(minLeaseSweep, 2*len(ls.m))
}
