package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// lockoutLua is the part every lockout script shares: the clock (the Redis
// server's, in ms), load and save.
//
// A key is one hash: n (confirmed failures), u (locked until, ms; 0 when
// not locked), e (when the failure count is forgotten, ms) and one field
// p:<attempt id> per attempt in flight, whose value is the time its place
// expires (ms). load reads it as it stands now: a lock that ended and a
// count past its window are gone (the count starts again from zero), and
// so are expired places. save writes the whole state back and sets the
// key to expire with the last thing it holds, or deletes it when nothing
// is left; a key therefore never outlives its lock, its count's window or
// its last place. The whole hash is read and rewritten each time: it
// holds at most MAX_LOGIN_ATTEMPTS places.
const lockoutLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function load(key)
  local all = redis.call('HGETALL', key)
  local n, u, e, pend, np = 0, 0, nil, {}, 0
  for i = 1, #all, 2 do
    local f, v = all[i], tonumber(all[i + 1]) or 0
    if f == 'n' then n = v
    elseif f == 'u' then u = v
    elseif f == 'e' then e = v
    elseif string.sub(f, 1, 2) == 'p:' and v > now then
      pend[f] = v
      np = np + 1
    end
  end
  if e == nil then
    -- a key written before e existed: its count ends with the key
    local ttl = redis.call('PTTL', key)
    e = 0
    if ttl > 0 then e = now + ttl end
  end
  if u > 0 and u <= now then n, u, e = 0, 0, 0 end
  if u == 0 and e <= now then n, e = 0, 0 end
  return n, u, e, pend, np
end
local function save(key, n, u, e, pend)
  redis.call('DEL', key)
  local exp, args = u, {}
  if n > 0 and e > exp then exp = e end
  for f, v in pairs(pend) do
    args[#args + 1] = f
    args[#args + 1] = v
    if v > exp then exp = v end
  end
  if exp <= now then return end
  redis.call('HSET', key, 'n', n, 'u', u, 'e', e, unpack(args))
  redis.call('PEXPIRE', key, exp - now)
end
`

// beginScript admits an attempt (permiso.Lockout.Begin).
// KEYS[1] = key, ARGV[1] = max attempts, ARGV[2] = attempt id, ARGV[3] =
// the place's lifetime in ms. Reply: {failures, pending, locked (0/1),
// locked until ms, admitted (0/1)}. A refusal writes nothing.
var beginScript = goredis.NewScript(lockoutLua + `
local n, u, e, pend, np = load(KEYS[1])
if u > now then return {n, np, 1, u, 0} end
if n + np >= tonumber(ARGV[1]) then return {n, np, 0, 0, 0} end
pend['p:' .. ARGV[2]] = now + tonumber(ARGV[3])
save(KEYS[1], n, u, e, pend)
return {n, np + 1, 0, 0, 1}
`)

// failScript ends an attempt with a wrong password (permiso.Lockout.Fail):
// its place goes, and unless the key is locked (then the lock does not
// slide and nothing is counted) the count grows, its window restarts, and
// the failure that reaches the maximum sets u = now + duration.
// KEYS[1] = key, ARGV[1] = max attempts, ARGV[2] = duration in ms, ARGV[3]
// = attempt id. Reply: {failures, pending, locked, locked until ms, just
// locked}.
var failScript = goredis.NewScript(lockoutLua + `
local n, u, e, pend, np = load(KEYS[1])
local f = 'p:' .. ARGV[3]
if pend[f] then
  pend[f] = nil
  np = np - 1
end
if u > now then
  save(KEYS[1], n, u, e, pend)
  return {n, np, 1, u, 0}
end
local dur = tonumber(ARGV[2])
n = n + 1
e = now + dur
local just = 0
if n >= tonumber(ARGV[1]) then
  u = e
  just = 1
end
save(KEYS[1], n, u, e, pend)
return {n, np, just, u, just}
`)

// succeedScript ends an attempt with a right password
// (permiso.Lockout.Succeed): its place goes, and the failures and the lock
// with it; other places stay. KEYS[1] = key, ARGV[1] = attempt id.
var succeedScript = goredis.NewScript(lockoutLua + `
local n, u, e, pend = load(KEYS[1])
pend['p:' .. ARGV[1]] = nil
save(KEYS[1], 0, 0, 0, pend)
return 1
`)

// undoScript gives back an attempt's place (permiso.Lockout.Undo).
// KEYS[1] = key, ARGV[1] = attempt id.
var undoScript = goredis.NewScript(lockoutLua + `
local n, u, e, pend = load(KEYS[1])
local f = 'p:' .. ARGV[1]
if not pend[f] then return 0 end
pend[f] = nil
save(KEYS[1], n, u, e, pend)
return 1
`)

// checkScript reads the state against the server's clock, as the others
// write it. KEYS[1] = key. Reply: {failures, pending, locked, locked until
// ms}.
var checkScript = goredis.NewScript(lockoutLua + `
local n, u, e, pend, np = load(KEYS[1])
if u > now then return {n, np, 1, u} end
return {n, np, 0, 0}
`)

// Lockout is the permiso.Lockout shared by every instance
// (docs/abuse-resistance.md, "Lockout"), one hash per key under the
// rate-limit prefix (CACHE_RATE_LIMIT_PREFIX):
//
//	<prefix>lockout:<sha256(key) in hex>   {n: failures, u: locked until (ms),
//	                         e: failures forgotten at (ms),
//	                         p:<attempt id>: place expires at (ms), ...}
//
// Every call but Reset (one DEL) is one script run (one round trip,
// atomic); times are the Redis server's. Of N concurrent Begin calls
// across any number of instances, at most MaxAttempts - failures are
// admitted; of N concurrent failures, exactly MaxAttempts are counted and
// exactly one locks. The key expires with the last thing it holds: its
// lock, its count's window or its last place in flight, so an instance
// that dies in the middle of a login leaves nothing behind for longer than
// permiso.LockoutAttemptTTL. Errors are EUNAVAILABLE; the password grant
// fails closed on them.
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
// A place in flight lasts permiso.LockoutAttemptTTL, or duration when
// shorter.
func NewLockout(c *Client, prefix string, maxAttempts int, duration time.Duration) *Lockout {
	return &Lockout{rdb: c.rdb, prefix: prefix, maxAttempts: max(1, maxAttempts), duration: duration}
}

// key is the Redis key of the lockout key k: <prefix>lockout: and the
// SHA-256 of k in lower-case hex, so that no username (k is the normalized
// login) appears in the Redis key space, and any k is one fixed-length key
// without a Redis Cluster hash tag (docs/abuse-resistance.md, "Lockout").
func (l *Lockout) key(k string) string { return LockoutKey(l.prefix, k) }

// LockoutKey is the Redis key a Lockout with keys under prefix keeps the
// lockout key k in: prefix + "lockout:" + hex(SHA-256(k)).
func LockoutKey(prefix, k string) string {
	sum := sha256.Sum256([]byte(k))
	return prefix + "lockout:" + hex.EncodeToString(sum[:])
}

func lockoutUnavailable(err error) error {
	return permiso.Wrap(permiso.EUNAVAILABLE, "lockout store unavailable", err)
}

func errLockoutReply() error {
	return permiso.Wrap(permiso.EINTERNAL, "lockout: unexpected reply", nil)
}

func millis(d time.Duration) int64 {
	return max(int64((d+time.Millisecond-1)/time.Millisecond), 1)
}

// Check reports the state of key.
func (l *Lockout) Check(ctx context.Context, key string) (permiso.LockoutState, error) {
	v, err := checkScript.Run(ctx, l.rdb, []string{l.key(key)}).Int64Slice()
	if err != nil {
		return permiso.LockoutState{}, lockoutUnavailable(err)
	}
	if len(v) != 4 {
		return permiso.LockoutState{}, errLockoutReply()
	}
	return state(v[0], v[1], v[2], v[3], 0), nil
}

// Begin admits an attempt on key, or refuses it (locked, or too many in
// flight).
func (l *Lockout) Begin(ctx context.Context, key string) (permiso.LockoutAttempt, error) {
	id := rand.Text()
	v, err := beginScript.Run(ctx, l.rdb, []string{l.key(key)}, l.maxAttempts, id,
		millis(min(permiso.LockoutAttemptTTL, l.duration))).Int64Slice()
	if err != nil {
		return permiso.LockoutAttempt{}, lockoutUnavailable(err)
	}
	if len(v) != 5 {
		return permiso.LockoutAttempt{}, errLockoutReply()
	}
	a := permiso.LockoutAttempt{State: state(v[0], v[1], v[2], v[3], 0)}
	if v[4] == 1 {
		a.ID = id
	}
	return a, nil
}

// Fail ends attempt id with a wrong password; while the key is locked it
// counts nothing and returns the lock.
func (l *Lockout) Fail(ctx context.Context, key, id string) (permiso.LockoutState, error) {
	v, err := failScript.Run(ctx, l.rdb, []string{l.key(key)}, l.maxAttempts, millis(l.duration), id).Int64Slice()
	if err != nil {
		return permiso.LockoutState{}, lockoutUnavailable(err)
	}
	if len(v) != 5 {
		return permiso.LockoutState{}, errLockoutReply()
	}
	return state(v[0], v[1], v[2], v[3], v[4]), nil
}

// Succeed ends attempt id with a right password and clears the count.
func (l *Lockout) Succeed(ctx context.Context, key, id string) error {
	if err := succeedScript.Run(ctx, l.rdb, []string{l.key(key)}, id).Err(); err != nil {
		return lockoutUnavailable(err)
	}
	return nil
}

// Undo gives back the place of attempt id.
func (l *Lockout) Undo(ctx context.Context, key, id string) error {
	if err := undoScript.Run(ctx, l.rdb, []string{l.key(key)}, id).Err(); err != nil {
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

func state(n, pending, locked, until, just int64) permiso.LockoutState {
	s := permiso.LockoutState{Failures: int(n), Pending: int(pending), Locked: locked == 1, JustLocked: just == 1}
	if s.Locked {
		s.LockedUntil = time.UnixMilli(until).UTC()
	}
	return s
}
