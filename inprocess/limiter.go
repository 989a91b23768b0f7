package inprocess

import (
	"context"
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// Limiter is an in-process permiso.RateLimiter using the sliding window of
// slots of docs/abuse-resistance.md: each key keeps one count per slot of
// its period (permiso.LimitSlots) that is still in the window, so "N per
// period" admits at most N requests in any window of that length, and a
// refused request is not recorded (it neither extends nor deepens the
// block). The same algorithm runs in Redis (redis.Limiter).
//
// It is safe for concurrent use; one mutex makes every call atomic. Memory
// is bounded by permiso.LimitSlots + 1 counts per live key, whatever the
// limit's Count: expired slots are dropped on access, and keys whose last
// slot expired are swept by later writes (amortized O(1), no goroutine).
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex
	windows map[string]*window
	sweeps  sweeps
}

// window holds the slots of one key still inside the last period, oldest
// first: the end of each slot (µs since the Unix epoch) and the requests
// admitted in it.
type window struct {
	slots []slot
	// period is the longest period the key was last used with; the key
	// may be forgotten once its newest slot ended that long ago.
	period time.Duration
}

type slot struct {
	end   int64
	count int
}

var _ permiso.RateLimiter = (*Limiter)(nil)

// NewLimiter returns an empty in-process rate limiter.
func NewLimiter(opts ...Option) *Limiter {
	return &Limiter{now: applyOptions(opts).now, windows: make(map[string]*window), sweeps: sweeps{at: minSweep}}
}

// Allow counts one request for key under limit. A disabled limit admits
// everything and records nothing.
func (l *Limiter) Allow(ctx context.Context, key string, limit permiso.Limit) (permiso.LimitResult, error) {
	res, err := l.AllowAll(ctx, []string{key}, []permiso.Limit{limit})
	if err != nil {
		return permiso.LimitResult{}, err
	}
	return res[0], nil
}

// AllowAll counts one request under every limit at once: it is admitted,
// and recorded in every key, only when each limit admits it.
func (l *Limiter) AllowAll(_ context.Context, keys []string, limits []permiso.Limit) ([]permiso.LimitResult, error) {
	if err := permiso.CheckLimitKeys(keys, limits); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	out := make([]permiso.LimitResult, len(keys))
	wins := make([]*window, len(keys))
	allowed := true
	for i, key := range keys {
		if limits[i].Disabled() {
			out[i] = permiso.LimitResult{Allowed: true}
			continue
		}
		w := l.windows[key]
		if w != nil {
			w.prune(now, limits[i].Period)
		}
		wins[i] = w
		out[i] = peek(w, now, limits[i])
		allowed = allowed && out[i].Allowed
	}
	retry := maxRetry(out)
	for i, key := range keys {
		lim := limits[i]
		if !allowed {
			// Another limit refused: nothing is counted, and this key
			// reports its budget as it stands.
			if out[i].Allowed {
				out[i].Allowed = false
				out[i].RetryAfter = retry
			}
			continue
		}
		if lim.Disabled() {
			continue
		}
		w := wins[i]
		if w == nil {
			w = &window{}
			l.windows[key] = w
		}
		end := slotEnd(now, lim)
		if n := len(w.slots); n > 0 && w.slots[n-1].end >= end {
			// The same slot (or a later one, when the key was last
			// used with a wider slot: counted longer, never shorter).
			w.slots[n-1].count++
		} else {
			w.slots = append(w.slots, slot{end: end, count: 1})
		}
		w.period = max(w.period, lim.Period)
		out[i] = peek(w, now, lim)
		out[i].Allowed, out[i].RetryAfter = true, 0
		l.wroteLocked(now)
	}
	return out, nil
}

// maxRetry is the longest RetryAfter among refused results: when it has
// passed, every limit admits a request again (as far as we know now).
func maxRetry(res []permiso.LimitResult) time.Duration {
	var d time.Duration
	for _, r := range res {
		if !r.Allowed {
			d = max(d, r.RetryAfter)
		}
	}
	return d
}

// Peek reports the state of key under limit without counting a request.
func (l *Limiter) Peek(_ context.Context, key string, limit permiso.Limit) (permiso.LimitResult, error) {
	if limit.Disabled() {
		return permiso.LimitResult{Allowed: true}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.windows[key]
	if w != nil {
		w.prune(now, limit.Period)
	}
	return peek(w, now, limit), nil
}

// slotEnd is the end of the slot of lim that holds now, in µs since the
// Unix epoch; redis.Limiter computes the same on the server's clock.
func slotEnd(now time.Time, lim permiso.Limit) int64 {
	w := lim.Slot().Microseconds()
	return (now.UnixMicro()/w + 1) * w
}

// expiry is when a request counted in the slot ending at end leaves the
// window of period.
func expiry(end int64, period time.Duration) time.Time {
	return time.UnixMicro(end).Add(period)
}

// peek computes the result of one more request on w (pruned for this
// limit's period) without recording it.
func peek(w *window, now time.Time, limit permiso.Limit) permiso.LimitResult {
	n := 0
	if w != nil {
		for _, s := range w.slots {
			n += s.count
		}
	}
	r := permiso.LimitResult{Allowed: n < limit.Count, Limit: limit.Count, Remaining: max(0, limit.Count-n)}
	if n > 0 {
		r.Reset = expiry(w.slots[len(w.slots)-1].end, limit.Period).Sub(now)
	}
	if !r.Allowed {
		// The slot whose expiry brings the count below the limit.
		for _, s := range w.slots {
			n -= s.count
			if n < limit.Count {
				r.RetryAfter = expiry(s.end, limit.Period).Sub(now)
				break
			}
		}
	}
	return r
}

// prune drops the slots that left the window (now-period, now].
func (w *window) prune(now time.Time, period time.Duration) {
	cut := 0
	for cut < len(w.slots) && !now.Before(expiry(w.slots[cut].end, period)) {
		cut++
	}
	if cut > 0 {
		w.slots = w.slots[cut:]
	}
}

// Len returns the number of keys held, live or expired but not yet swept.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.windows)
}

func (l *Limiter) wroteLocked(now time.Time) {
	sweep(&l.sweeps, l.windows, func(_ string, w *window) bool {
		n := len(w.slots)
		return n == 0 || !now.Before(expiry(w.slots[n-1].end, w.period))
	})
}
