package redis

import (
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// leases are the blocks of requests this instance has counted ahead in
// Redis for leased limits (permiso.CheckBatch.AllowLeased: RATE_LIMIT_API;
// docs/abuse-resistance.md, "Leases"). A lease is one run of limitScript
// that counts up to its size at once, in the slot after the current one;
// the instance then spends those requests locally, without a round trip,
// during at most one slot of the limit (permiso.Limit.Slot). Each request
// is thus counted in Redis before it is spent and until at least a period
// after, so no window of the period ever admits more than the limit,
// across instances. Requests a lease did not spend are given back by the
// next lease of the key (when their slot still exists), or leave with
// their slot.
//
// A key's first lease asks for one request; each lease spent before it
// ran out asks for twice as many next time, up to one slot's share of the
// limit (Count / permiso.LimitSlots), and one that ran out with requests
// left asks for half as many. So a key seen once costs what Allow costs,
// and a busy one one round trip per lease.
type leases struct {
	mu      sync.Mutex
	m       map[string]*lease
	sweepAt int
}

// lease is the state of one key.
type lease struct {
	limit permiso.Limit
	// left requests are counted and not spent; they may be spent until
	// expires (local monotonic time).
	left    int
	end     int64
	expires time.Time
	// size is how many requests the next lease asks for.
	size int
	// res is Redis's answer when the lease was taken, at taken.
	res   permiso.LimitResult
	taken time.Time
}

// minLeaseSweep is the number of leases below which the map is not swept.
const minLeaseSweep = 1024

func newLeases() *leases {
	return &leases{m: make(map[string]*lease), sweepAt: minLeaseSweep}
}

// leaseCap is the most requests one lease of limit counts.
func leaseCap(limit permiso.Limit) int {
	return max(1, limit.Count/permiso.LimitSlots)
}

// take spends one request of key's lease when it has one left. Otherwise
// it returns how many requests the next lease should ask for and what the
// expired lease gives back.
func (ls *leases) take(key string, limit permiso.Limit, now time.Time) (res permiso.LimitResult, ok bool, want int, give giveBack) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[key]
	if l == nil || l.limit != limit {
		return permiso.LimitResult{}, false, 1, giveBack{}
	}
	live := now.Before(l.expires)
	switch {
	case live && l.left > 0:
		l.left--
		return permiso.LimitResult{Allowed: true, Limit: limit.Count, Remaining: l.res.Remaining + l.left,
			Reset: max(0, l.res.Reset-now.Sub(l.taken))}, true, 0, giveBack{}
	case live:
		// Spent before its time: the key is busy.
		l.size = min(2*l.size, leaseCap(limit))
	case l.left > 0:
		give = giveBack{end: l.end, n: l.left}
		l.size = max(1, l.size/2)
		l.left = 0
	}
	return permiso.LimitResult{}, false, l.size, give
}

// record keeps the lease Redis granted for key (reply of a script sent at
// sent, asking for want requests); the request that asked for it spends
// one. It returns the request's result.
func (ls *leases) record(key string, limit permiso.Limit, want int, sent time.Time, r scriptReply) permiso.LimitResult {
	res := r.results[0]
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[key]
	if l == nil || l.limit != limit {
		l = &lease{limit: limit, size: want}
		ls.m[key] = l
		ls.sweepLocked(sent)
	}
	if r.granted < 1 {
		return res
	}
	if l.left > 0 && l.end != r.ends[0] || !sent.Before(l.expires) {
		// Another lease of the key, taken concurrently in another slot:
		// its requests leave with their slot.
		l.left = 0
	}
	if l.left > 0 && l.res.Remaining < res.Remaining {
		// Another lease of the same slot, whose reply came first but
		// which Redis counted after this one: its count is the newer
		// (it includes this lease), so Remaining plus what the leases
		// have left stays below the limit.
		res.Remaining = l.res.Remaining
	}
	l.left += r.granted - 1
	l.end = r.ends[0]
	l.expires = sent.Add(limit.Slot())
	l.res, l.taken = res, sent
	res.Remaining += l.left
	return res
}

// sweepLocked forgets the leases that expired, once the map has doubled
// since the last sweep: their unspent requests leave with their slot.
func (ls *leases) sweepLocked(now time.Time) {
	if len(ls.m) < ls.sweepAt {
		return
	}
	for k, l := range ls.m {
		if !now.Before(l.expires) {
			delete(ls.m, k)
		}
	}
	ls.sweepAt = max(minLeaseSweep, 2*len(ls.m))
}
