package memory

import (
	"context"
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// Lockout is an in-process permiso.Lockout: MaxAttempts consecutive
// failures lock a key for Duration (SPEC §6). It is safe for concurrent
// use; one mutex makes every call atomic, so of N concurrent failures the
// one that reaches MaxAttempts locks the key, exactly once, and the others
// find it locked and are not counted.
//
// A failure count is forgotten Duration after the last failure (the same
// window as the lock itself); a lock ends Duration after it was set and is
// never extended by attempts made while it holds.
type Lockout struct {
	now         func() time.Time
	maxAttempts int
	duration    time.Duration

	mu      sync.Mutex
	entries map[string]lockEntry
	writes  int
	sweepAt int
}

type lockEntry struct {
	failures int
	until    time.Time // zero unless locked
	expires  time.Time // when the entry is forgotten
}

var _ permiso.Lockout = (*Lockout)(nil)

// NewLockout returns an in-process lockout that locks a key for duration
// after maxAttempts consecutive failures (MAX_LOGIN_ATTEMPTS,
// LOCKOUT_DURATION_MINUTES). maxAttempts below 1 counts as 1.
func NewLockout(maxAttempts int, duration time.Duration, opts ...Option) *Lockout {
	return &Lockout{now: applyOptions(opts).now, maxAttempts: max(1, maxAttempts), duration: duration,
		entries: make(map[string]lockEntry), sweepAt: minSweep}
}

// live returns the entry of key as it stands at now (zero when forgotten
// or when its lock has ended).
func (l *Lockout) live(key string, now time.Time) lockEntry {
	e, ok := l.entries[key]
	if !ok || !now.Before(e.expires) || (!e.until.IsZero() && !now.Before(e.until)) {
		return lockEntry{}
	}
	return e
}

func (e lockEntry) state(now time.Time) permiso.LockoutState {
	s := permiso.LockoutState{Failures: e.failures}
	if !e.until.IsZero() && now.Before(e.until) {
		s.Locked, s.LockedUntil = true, e.until
	}
	return s
}

// Check reports the state of key.
func (l *Lockout) Check(_ context.Context, key string) (permiso.LockoutState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.live(key, now).state(now), nil
}

// Fail records a failed attempt. While the key is locked it changes
// nothing and returns the lock (without JustLocked).
func (l *Lockout) Fail(_ context.Context, key string) (permiso.LockoutState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.live(key, now)
	if !e.until.IsZero() {
		return e.state(now), nil
	}
	e.failures++
	e.expires = now.Add(l.duration)
	justLocked := false
	if e.failures >= l.maxAttempts {
		e.until = e.expires
		justLocked = true
	}
	l.entries[key] = e
	l.wroteLocked(now)
	s := e.state(now)
	s.JustLocked = justLocked
	return s, nil
}

// Reset clears key.
func (l *Lockout) Reset(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
	return nil
}

// Undo takes back the failure counted by the Fail call that returned st
// (permiso.Lockout.Undo).
func (l *Lockout) Undo(_ context.Context, key string, st permiso.LockoutState) error {
	if st.Locked && !st.JustLocked {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.live(key, now)
	switch {
	case st.JustLocked:
		if e.until.IsZero() || !e.until.Equal(st.LockedUntil) {
			return nil
		}
		e.until = time.Time{}
	case e.failures == 0:
		return nil
	}
	// A lock set by another call stays; only the count drops.
	e.failures = max(e.failures-1, 0)
	if e.failures == 0 && e.until.IsZero() {
		delete(l.entries, key)
		return nil
	}
	l.entries[key] = e
	return nil
}

// Len returns the number of keys held, live or expired but not yet swept.
func (l *Lockout) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *Lockout) wroteLocked(now time.Time) {
	l.writes++
	if l.writes < l.sweepAt {
		return
	}
	for k, e := range l.entries {
		if !now.Before(e.expires) {
			delete(l.entries, k)
		}
	}
	l.writes = 0
	l.sweepAt = max(minSweep, len(l.entries))
}
