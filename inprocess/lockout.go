package inprocess

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// Lockout is an in-process permiso.Lockout: MaxAttempts consecutive
// failures lock a key for Duration (docs/abuse-resistance.md, "Lockout").
// It is safe for concurrent use; one mutex makes every call atomic, so of
// N concurrent Begin calls at most MaxAttempts - Failures are admitted,
// and of N concurrent failures the one that reaches MaxAttempts locks the
// key, exactly once, and the others find it locked and are not counted.
//
// A failure count is forgotten Duration after the last failure (the same
// window as the lock itself); a lock ends Duration after it was set and is
// never extended by attempts made while it holds. An admitted attempt's
// place expires after permiso.LockoutAttemptTTL (or Duration, when
// shorter).
type Lockout struct {
	now         func() time.Time
	maxAttempts int
	duration    time.Duration
	attemptTTL  time.Duration

	mu      sync.Mutex
	entries map[string]lockEntry
	nextID  uint64
	sweeps  sweeps
}

type lockEntry struct {
	failures int
	until    time.Time // zero unless locked
	expires  time.Time // when the failure count is forgotten
	// pending maps each admitted attempt in flight to the time its place
	// expires.
	pending map[string]time.Time
}

var _ permiso.Lockout = (*Lockout)(nil)

// NewLockout returns an in-process lockout that locks a key for duration
// after maxAttempts consecutive failures (MAX_LOGIN_ATTEMPTS,
// LOCKOUT_DURATION_MINUTES). maxAttempts below 1 counts as 1.
func NewLockout(maxAttempts int, duration time.Duration, opts ...Option) *Lockout {
	return &Lockout{now: applyOptions(opts).now, maxAttempts: max(1, maxAttempts), duration: duration,
		attemptTTL: min(permiso.LockoutAttemptTTL, duration),
		entries:    make(map[string]lockEntry), sweeps: sweeps{at: minSweep}}
}

// live returns the entry of key as it stands at now: a lock that ended
// and a failure count past its window are gone (the count starts again
// from zero), and so are expired places. The pending map is a copy.
func (l *Lockout) live(key string, now time.Time) lockEntry {
	e, ok := l.entries[key]
	if !ok {
		return lockEntry{pending: map[string]time.Time{}}
	}
	if !e.until.IsZero() && !now.Before(e.until) || e.until.IsZero() && !now.Before(e.expires) {
		e.failures, e.until, e.expires = 0, time.Time{}, time.Time{}
	}
	pending := make(map[string]time.Time, len(e.pending))
	for id, exp := range e.pending {
		if now.Before(exp) {
			pending[id] = exp
		}
	}
	e.pending = pending
	return e
}

func (e lockEntry) state(now time.Time) permiso.LockoutState {
	s := permiso.LockoutState{Failures: e.failures, Pending: len(e.pending)}
	if !e.until.IsZero() && now.Before(e.until) {
		s.Locked, s.LockedUntil = true, e.until
	}
	return s
}

// store writes e back, or forgets key when nothing of it is left.
func (l *Lockout) store(key string, e lockEntry, now time.Time) {
	if e.failures == 0 && e.until.IsZero() && len(e.pending) == 0 {
		delete(l.entries, key)
		return
	}
	l.entries[key] = e
	l.wroteLocked(now)
}

// Check reports the state of key.
func (l *Lockout) Check(_ context.Context, key string) (permiso.LockoutState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.live(key, now).state(now), nil
}

// Begin admits an attempt while the key is not locked and failures plus
// attempts in flight are below the maximum.
func (l *Lockout) Begin(_ context.Context, key string) (permiso.LockoutAttempt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.live(key, now)
	if st := e.state(now); st.Locked || st.Failures+st.Pending >= l.maxAttempts {
		return permiso.LockoutAttempt{State: st}, nil
	}
	l.nextID++
	id := strconv.FormatUint(l.nextID, 36)
	e.pending[id] = now.Add(l.attemptTTL)
	l.store(key, e, now)
	return permiso.LockoutAttempt{ID: id, State: e.state(now)}, nil
}

// Fail ends attempt id with a wrong password and counts the failure;
// while the key is locked it counts nothing and returns the lock (without
// JustLocked).
func (l *Lockout) Fail(_ context.Context, key, id string) (permiso.LockoutState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.live(key, now)
	delete(e.pending, id)
	if !e.until.IsZero() {
		l.store(key, e, now)
		return e.state(now), nil
	}
	e.failures++
	e.expires = now.Add(l.duration)
	justLocked := false
	if e.failures >= l.maxAttempts {
		e.until = e.expires
		justLocked = true
	}
	l.store(key, e, now)
	s := e.state(now)
	s.JustLocked = justLocked
	return s, nil
}

// Succeed ends attempt id with a right password: the failures and the
// lock are cleared; other attempts in flight keep their places.
func (l *Lockout) Succeed(_ context.Context, key, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.live(key, now)
	delete(e.pending, id)
	e.failures, e.until, e.expires = 0, time.Time{}, time.Time{}
	l.store(key, e, now)
	return nil
}

// Undo gives back the place of attempt id.
func (l *Lockout) Undo(_ context.Context, key, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.live(key, now)
	if _, ok := e.pending[id]; !ok {
		return nil
	}
	delete(e.pending, id)
	l.store(key, e, now)
	return nil
}

// Reset clears key.
func (l *Lockout) Reset(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
	return nil
}

// Len returns the number of keys held, live or expired but not yet swept.
func (l *Lockout) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// wroteLocked sweeps, now and then, the keys of which nothing is left.
func (l *Lockout) wroteLocked(now time.Time) {
	sweep(&l.sweeps, l.entries, func(k string, _ lockEntry) bool {
		e := l.live(k, now)
		return e.failures == 0 && e.until.IsZero() && len(e.pending) == 0
	})
}
