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

// LimitSlots is the number of slots a limit's period is divided into by
// the rate limiters (docs/abuse-resistance.md, "Algorithm: sliding window
// of slots"): a key holds at most one count per slot still in its window,
// LimitSlots + 1 counts whatever the limit's Count (in Redis, and their
// running total), and a request counts
// from its admission until its slot's end has left the window: at least
// the period, at most the period plus one slot.
const LimitSlots = 60

// Slot returns the width of one slot of l: Period / LimitSlots, at least
// one microsecond.
func (l Limit) Slot() time.Duration {
	return max(l.Period/LimitSlots, time.Microsecond).Truncate(time.Microsecond)
}

// LimitResult is the state of one rate-limit key after a check.
type LimitResult struct {
	Allowed   bool
	Limit     int
	Remaining int
	// Reset is how long until the budget is fully available again;
	// RetryAfter (when not Allowed) how long until one request would be.
	Reset      time.Duration
	RetryAfter time.Duration
	// Period is the period of the limit, when the caller that holds
	// several limits says which one this is (a service client's own
	// limits, for the RateLimit-Policy header); zero otherwise.
	Period time.Duration
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

// LockoutAttemptTTL bounds how long an admitted login attempt holds its
// place (LockoutState.Pending) when it is never finished: an instance
// killed in the middle of a password check must not keep an account
// refusing logins. It is well beyond one password check (the hasher's
// bounded wait, argon2id.DefaultMaxWait, plus one hash); an attempt that
// outlives it still counts its failure when it ends. A lockout whose
// duration is shorter uses that duration instead.
const LockoutAttemptTTL = 10 * time.Second

// LockoutRetryAfter is the Retry-After of an attempt refused because
// others for the same account are in flight (too_many_attempts): about the
// time one password check takes, after which those attempts have ended.
const LockoutRetryAfter = 2 * time.Second

// LockoutState is the failed-login state of one key (a normalized
// username, whether or not such a user exists).
type LockoutState struct {
	// Failures counts confirmed failures: passwords checked and found
	// wrong (or logins for an unknown user).
	Failures int
	// Pending counts attempts admitted by Begin whose password check has
	// not ended yet (and whose LockoutAttemptTTL has not run out).
	Pending     int
	Locked      bool
	LockedUntil time.Time
	// JustLocked is set on the state returned by the one Fail call that
	// locked the key. A Fail call that finds the key already locked
	// returns Locked without JustLocked: its attempt was not counted.
	JustLocked bool
}

// LockoutAttempt is Begin's answer: an admitted attempt (ID set), or a
// refusal, whose State says why: Locked, or too many attempts in flight
// (Failures + Pending reached the maximum without a lock).
type LockoutAttempt struct {
	// ID names the admitted attempt for Fail, Succeed and Undo; "" when
	// the attempt was refused.
	ID    string
	State LockoutState
}

// Admitted reports whether the attempt may check a password.
func (a LockoutAttempt) Admitted() bool { return a.ID != "" }

// Lockout counts consecutive failed logins per key and locks the key for a
// fixed duration after the configured maximum of failures (docs/abuse-
// resistance.md, "Lockout"). It is shared by every instance (Redis) or in
// process.
//
// Attempts in flight are counted apart from confirmed failures, so that
// the maximum bounds the passwords ever checked wrong before the lock,
// under any concurrency, without treating concurrent right passwords as
// failures: Begin admits an attempt only while Failures + Pending is below
// the maximum, and each admitted attempt ends with exactly one of Fail
// (wrong password: Pending becomes a Failure), Succeed (right password:
// the count is reset) or Undo (no password was checked: the place is
// given back). An attempt that never ends gives its place back by itself
// after LockoutAttemptTTL.
//
// Implementations MUST be atomic: of N concurrent Begin calls on a key
// with no failures, exactly min(N, max) are admitted; of N concurrent
// failures, the one that reaches the maximum locks the key, exactly once;
// failures while locked neither count nor extend the lock.
type Lockout interface {
	// Check reports the state of key.
	Check(ctx context.Context, key string) (LockoutState, error)
	// Begin admits one attempt on key, or refuses it: while the key is
	// locked (State.Locked), or while Failures + Pending is at the
	// maximum (State not Locked). A refusal changes nothing.
	Begin(ctx context.Context, key string) (LockoutAttempt, error)
	// Fail ends the attempt id with a wrong password: its place is freed
	// and a failure is counted; the failure that reaches the maximum
	// locks the key (JustLocked). While the key is locked it counts
	// nothing and returns the lock. A wrong password always counts, even
	// when id no longer holds a place (expired, or the key was reset
	// since); id "" counts a failure without one.
	Fail(ctx context.Context, key, id string) (LockoutState, error)
	// Succeed ends the attempt id with a right password: its place is
	// freed, and the failures and any lock are cleared (a successful
	// login resets the count). Other attempts in flight keep their
	// places: their passwords are still being checked.
	Succeed(ctx context.Context, key, id string) error
	// Undo gives back the place of the attempt id, whose password was
	// never checked (the hasher was saturated, the request ended): a user
	// turned away must not lose attempts by it. Nothing else changes; an
	// id that holds no place is ignored.
	Undo(ctx context.Context, key, id string) error
	// Reset clears the key: failures, lock and places (admin unlock,
	// password reset). Attempts still in flight count their failures
	// when they end.
	Reset(ctx context.Context, key string) error
}

// CheckLimitKeys enforces the argument contract of RateLimiter.AllowAll
// (and of a Checker's limits), which every implementation shares: as many
// limits as keys, at least one, and distinct keys.
func CheckLimitKeys(keys []string, limits []Limit) error {
	if len(keys) != len(limits) || len(keys) == 0 {
		return Invalid("rate limiter: need one limit per key")
	}
	for i := range keys {
		for j := range i {
			if keys[i] == keys[j] {
				return Invalid("rate limiter: a key is given twice")
			}
		}
	}
	return nil
}
