package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// failScript records one failed login atomically. The key is a hash with
// n (consecutive failures) and u (locked until, Unix ms of the Redis
// server's clock; 0 when not locked). While u is in the future nothing
// changes: the lock does not slide and the attempt is not counted. Else
// the count grows; the failure that reaches the maximum sets u = now +
// duration. Every counted failure sets the key's TTL to the duration, so a
// count is forgotten one lockout duration after the last failure, and a
// lock disappears with its key when it ends.
//
// KEYS[1] = key, ARGV[1] = max attempts, ARGV[2] = duration in ms.
// Reply: {failures, locked (0/1), locked until ms, just locked (0/1)}.
var failScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'n', 'u')
local n = tonumber(v[1]) or 0
local u = tonumber(v[2]) or 0
if u > now then
  return {n, 1, u, 0}
end
if u > 0 then n = 0 end
n = n + 1
local dur = tonumber(ARGV[2])
if n >= tonumber(ARGV[1]) then
  u = now + dur
  redis.call('HSET', KEYS[1], 'n', n, 'u', u)
  redis.call('PEXPIRE', KEYS[1], dur)
  return {n, 1, u, 1}
end
redis.call('HSET', KEYS[1], 'n', n, 'u', 0)
redis.call('PEXPIRE', KEYS[1], dur)
return {n, 0, 0, 0}
`)

// undoScript takes back one counted failure (permiso.Lockout.Undo): the
// count drops by one, and the lock goes too when the undone call set it
// (a lock set by another call stays).
// KEYS[1] = key, ARGV[1] = the locked-until ms of the lock the undone call
// set, or 0 when it did not lock. The key keeps its TTL.
var undoScript = goredis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'n', 'u')
local n = tonumber(v[1]) or 0
local u = tonumber(v[2]) or 0
local mine = tonumber(ARGV[1])
if mine > 0 then
  if u ~= mine then return 0 end
  u = 0
elseif n == 0 then
  return 0
end
n = n - 1
if n <= 0 and u == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'n', math.max(n, 0), 'u', u)
end
return 1
`)

// checkScript reads the state against the server's clock, as failScript
// writes it. KEYS[1] = key. Reply: {failures, locked, locked until ms}.
var checkScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'n', 'u')
local n = tonumber(v[1]) or 0
local u = tonumber(v[2]) or 0
if u > now then return {n, 1, u} end
if u > 0 then return {0, 0, 0} end
return {n, 0, 0}
`)

// Lockout is the permiso.Lockout shared by every instance (SPEC §6), one
// hash per key under the rate-limit prefix (CACHE_RATE_LIMIT_PREFIX):
//
//	<prefix>lockout:<key>   {n: failures, u: locked until (ms)}, TTL = duration
//
// Fail and Check are one script run each (one round trip, atomic), Reset
// one DEL. Of N concurrent failures across any number of instances,
// exactly MaxAttempts are counted and exactly one locks. Errors are
// EUNAVAILABLE; the password grant fails closed on them.
type Lockout struct {
	rdb         goredis.UniversalClient
	prefix      string
	maxAttempts int
	duration    time.Duration
}

var _ permiso.Lockout = (*Lockout)(nil)

// NewLockout returns the lockout over c with keys under prefix, locking a
// key for duration after maxAttempts consecutive failures
// (MAX_LOGIN_ATTEMPTS, LOCKOUT_DURATION_MINUTES). maxAttempts below 1
// counts as 1; duration is rounded up to the millisecond, at least 1 ms.
func NewLockout(c *Client, prefix string, maxAttempts int, duration time.Duration) *Lockout {
	return &Lockout{rdb: c.rdb, prefix: prefix, maxAttempts: max(1, maxAttempts), duration: duration}
}

func (l *Lockout) key(k string) string { return l.prefix + "lockout:" + k }

func lockoutUnavailable(err error) error {
	return permiso.Wrap(permiso.EUNAVAILABLE, "lockout store unavailable", err)
}

func (l *Lockout) durationMillis() int64 {
	return max(int64((l.duration+time.Millisecond-1)/time.Millisecond), 1)
}

// Check reports the state of key.
func (l *Lockout) Check(ctx context.Context, key string) (permiso.LockoutState, error) {
	v, err := checkScript.Run(ctx, l.rdb, []string{l.key(key)}).Int64Slice()
	if err != nil {
		return permiso.LockoutState{}, lockoutUnavailable(err)
	}
	if len(v) != 3 {
		return permiso.LockoutState{}, permiso.Wrap(permiso.EINTERNAL, "lockout: unexpected reply", nil)
	}
	return state(v[0], v[1], v[2], 0), nil
}

// Fail records a failed attempt; while the key is locked it changes
// nothing and returns the lock.
func (l *Lockout) Fail(ctx context.Context, key string) (permiso.LockoutState, error) {
	v, err := failScript.Run(ctx, l.rdb, []string{l.key(key)}, l.maxAttempts, l.durationMillis()).Int64Slice()
	if err != nil {
		return permiso.LockoutState{}, lockoutUnavailable(err)
	}
	if len(v) != 4 {
		return permiso.LockoutState{}, permiso.Wrap(permiso.EINTERNAL, "lockout: unexpected reply", nil)
	}
	return state(v[0], v[1], v[2], v[3]), nil
}

// Undo takes back the failure counted by the Fail call that returned st.
func (l *Lockout) Undo(ctx context.Context, key string, st permiso.LockoutState) error {
	if st.Locked && !st.JustLocked {
		return nil
	}
	var mine int64
	if st.JustLocked {
		mine = st.LockedUntil.UnixMilli()
	}
	if err := undoScript.Run(ctx, l.rdb, []string{l.key(key)}, mine).Err(); err != nil {
		return lockoutUnavailable(err)
	}
	return nil
}

// Reset clears key.
func (l *Lockout) Reset(ctx context.Context, key string) error {
	if err := l.rdb.Del(ctx, l.key(key)).Err(); err != nil {
		return lockoutUnavailable(err)
	}
	return nil
}

func state(n, locked, until, just int64) permiso.LockoutState {
	s := permiso.LockoutState{Failures: int(n), Locked: locked == 1, JustLocked: just == 1}
	if s.Locked {
		s.LockedUntil = time.UnixMilli(until).UTC()
	}
	return s
}
