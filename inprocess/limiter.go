package inprocess

import (
	"context"
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// Limiter is an in-process permiso.RateLimiter using a sliding-window log:
// each key keeps the times of the requests it admitted during the last
// period, so "N per period" admits at most N requests in any window of
// that length, exactly, and a refused request is not recorded (it neither
// extends nor deepens the block). The same algorithm runs in Redis
// (redis.Limiter); docs/abuse-resistance.md explains the choice.
//
// It is safe for concurrent use; one mutex makes every call atomic. Memory
// is bounded by the requests admitted in the last period of each key:
// expired entries are dropped on access, and keys whose last entry expired
// are swept by later writes (amortized O(1), no goroutine).
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex
	windows map[string]*window
	writes  int
	sweepAt int
}

// window is the log of one key: the admission times still inside the
// last period, oldest first.
type window struct {
	times []time.Time
	// period is the longest period the key was last used with; the key
	// may be forgotten once its newest entry is that old.
	period time.Duration
}

var _ permiso.RateLimiter = (*Limiter)(nil)

// NewLimiter returns an empty in-process rate limiter.
func NewLimiter(opts ...Option) *Limiter {
	return &Limiter{now: applyOptions(opts).now, windows: make(map[string]*window), sweepAt: minSweep}
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
		w.times = append(w.times, now)
		w.period = max(w.period, lim.Period)
		out[i] = permiso.LimitResult{Allowed: true, Limit: lim.Count,
			Remaining: max(0, lim.Count-len(w.times)), Reset: lim.Period}
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

// peek computes the result of one more request on w (pruned for this
// limit's period) without recording it.
func peek(w *window, now time.Time, limit permiso.Limit) permiso.LimitResult {
	n := 0
	if w != nil {
		n = len(w.times)
	}
	r := permiso.LimitResult{Allowed: n < limit.Count, Limit: limit.Count, Remaining: max(0, limit.Count-n)}
	if n > 0 {
		r.Reset = w.times[n-1].Add(limit.Period).Sub(now)
	}
	if !r.Allowed {
		// The entry whose expiry brings the count below the limit.
		r.RetryAfter = w.times[n-limit.Count].Add(limit.Period).Sub(now)
	}
	return r
}

// prune drops the entries that left the window (now-period, now].
func (w *window) prune(now time.Time, period time.Duration) {
	cut := 0
	for cut < len(w.times) && !now.Before(w.times[cut].Add(period)) {
		cut++
	}
	if cut > 0 {
		w.times = w.times[cut:]
	}
}

// Len returns the number of keys held, live or expired but not yet swept.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.windows)
}

func (l *Limiter) wroteLocked(now time.Time) {
	l.writes++
	if l.writes < l.sweepAt {
		return
	}
	for k, w := range l.windows {
		if n := len(w.times); n == 0 || !now.Before(w.times[n-1].Add(w.period)) {
			delete(l.windows, k)
		}
	}
	l.writes = 0
	l.sweepAt = max(minSweep, len(l.windows))
}
