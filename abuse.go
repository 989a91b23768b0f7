package permiso

import (
	"context"
	"time"
)

// Limit is a rate: Count requests per Period. The zero Limit is disabled.
type Limit struct {
	Count  int
	Period time.Duration
}

// Disabled reports whether the limit admits everything.
func (l Limit) Disabled() bool { return l.Count <= 0 || l.Period <= 0 }

// LimitResult is the state of one rate-limit key after a check.
type LimitResult struct {
	Allowed   bool
	Limit     int
	Remaining int
	// Reset is how long until the budget is fully available again;
	// RetryAfter (when not Allowed) how long until one request would be.
	Reset      time.Duration
	RetryAfter time.Duration
}

// RateLimiter counts requests per key, shared by every instance (Redis)
// or in process. Implementations MUST be exact under concurrency: of N
// concurrent Allow calls on a fresh key, exactly min(N, limit.Count) are
// allowed.
type RateLimiter interface {
	// Allow counts one request for key under limit.
	Allow(ctx context.Context, key string, limit Limit) (LimitResult, error)
	// Peek reports the state of key without counting a request.
	Peek(ctx context.Context, key string, limit Limit) (LimitResult, error)
	// AllowAll counts one request under several limits at once,
	// atomically: keys[i] is checked against limits[i]; the request is
	// allowed only when every limit admits it, and only an allowed request
	// is counted (in every key). Results are in the order of keys. Keys
	// passed together MUST share a Redis Cluster hash slot (one {hash tag})
	// and keys and limits MUST have the same length.
	AllowAll(ctx context.Context, keys []string, limits []Limit) ([]LimitResult, error)
}

// LockoutState is the failed-login state of one key (a normalized
// username, whether or not such a user exists).
type LockoutState struct {
	Failures    int
	Locked      bool
	LockedUntil time.Time
	// JustLocked is set on the state returned by the one Fail call that
	// locked the key. A Fail call that finds the key already locked
	// returns Locked without JustLocked: its attempt was not counted.
	JustLocked bool
}

// Lockout counts consecutive failed logins per key and locks the key for a
// fixed duration after the configured number of failures (SPEC §6). It is
// shared by every instance (Redis) or in process. Implementations MUST be
// atomic: of N concurrent failures on one key, the one that reaches the
// maximum locks it, exactly once; failures while locked neither count nor
// extend the lock.
type Lockout interface {
	// Check reports the state of key.
	Check(ctx context.Context, key string) (LockoutState, error)
	// Fail records a failed attempt and returns the new state. While the
	// key is locked it changes nothing and returns the lock.
	Fail(ctx context.Context, key string) (LockoutState, error)
	// Reset clears the key (successful login, admin unlock, password
	// reset).
	Reset(ctx context.Context, key string) error
	// Undo takes back the failure counted by a Fail call that returned st,
	// for an attempt whose password was never checked (the hasher was
	// saturated, the request ended): a user must not lock their own
	// account by being turned away. The count drops by one; when that
	// call locked the key (st.JustLocked) and the same lock still holds,
	// the lock is lifted. A lock set by another call, and a key reset or
	// forgotten since, are left alone. Undo of a call that found the key
	// locked (st.Locked without JustLocked: nothing was counted) changes
	// nothing.
	Undo(ctx context.Context, key string, st LockoutState) error
}
