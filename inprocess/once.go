package inprocess

import (
	"context"
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// Once is the in-process permiso.OnceStore: a map of keys to their
// deadline, swept of expired keys every minSweep claims.
type Once struct {
	now    func() time.Time
	mu     sync.Mutex
	keys   map[string]time.Time
	writes int
}

var _ permiso.OnceStore = (*Once)(nil)

// NewOnce returns an empty in-process once-store.
func NewOnce(opts ...Option) *Once {
	return &Once{now: applyOptions(opts).now, keys: make(map[string]time.Time)}
}

// Claim records key until now+ttl unless it is already live.
func (o *Once) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" || ttl < time.Millisecond {
		return false, permiso.Invalid("a once key and a ttl of at least a millisecond are required")
	}
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if d, ok := o.keys[key]; ok && live(d, now) {
		return false, nil
	}
	o.keys[key] = now.Add(ttl)
	if o.writes++; o.writes >= minSweep {
		o.writes = 0
		for k, d := range o.keys {
			if !live(d, now) {
				delete(o.keys, k)
			}
		}
	}
	return true, nil
}
