package redis

import (
	"context"
	"crypto/rand"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// limitScript is the sliding-window log (docs/abuse-resistance.md) over one
// or more keys, in one atomic step. Each key is a sorted set whose members
// are the requests it admitted, scored by admission time in microseconds of
// the Redis server's clock (TIME), so the instances' clocks do not matter.
//
// For each key it drops the entries that left the window (now-period, now],
// counts the rest and, when the key is full, finds when the entry that
// frees a slot leaves. Only when every key admits the request (and only
// then, unless ARGV[1] is empty, which is a Peek) is the request added to
// every key, whose TTL becomes its period: an idle key disappears on its
// own. A count of 0 disables the limit of that key.
//
// KEYS: the keys (one hash slot). ARGV[1] = member for this request ("" to
// peek); then for key i: ARGV[2i] = count, ARGV[2i+1] = period in µs.
// Reply: {allowed, retry µs, then per key: used, reset µs, retry µs}.
var limitScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local member = ARGV[1]
local n = #KEYS
local used, reset, retry = {}, {}, {}
local allowed, maxretry = 1, 0
for i = 1, n do
  local count = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  used[i], reset[i], retry[i] = 0, 0, 0
  if count > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
    local u = redis.call('ZCARD', KEYS[i])
    used[i] = u
    if u > 0 then
      local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
      reset[i] = tonumber(newest[2]) + period - now
    end
    if u >= count then
      local e = redis.call('ZRANGE', KEYS[i], u - count, u - count, 'WITHSCORES')
      retry[i] = tonumber(e[2]) + period - now
      allowed = 0
      if retry[i] > maxretry then maxretry = retry[i] end
    end
  end
end
if allowed == 1 and member ~= '' then
  for i = 1, n do
    local count = tonumber(ARGV[2 * i])
    local period = tonumber(ARGV[2 * i + 1])
    if count > 0 then
      redis.call('ZADD', KEYS[i], now, member)
      redis.call('PEXPIRE', KEYS[i], math.ceil(period / 1000))
      used[i] = used[i] + 1
      reset[i] = period
    end
  end
end
local out = {allowed, maxretry}
for i = 1, n do
  out[#out + 1] = used[i]
  out[#out + 1] = reset[i]
  out[#out + 1] = retry[i]
end
return out
`)

// Limiter is the permiso.RateLimiter shared by every instance: a
// sliding-window log per key in Redis, under one key prefix
// (CACHE_RATE_LIMIT_PREFIX). Every call is one script run: one round trip,
// atomic, so the counts are exact under any concurrency, across instances.
// Callers' keys are appended to the prefix:
//
//	<prefix><key>   sorted set of admitted requests, TTL = the period
//
// Errors from Redis are EUNAVAILABLE *permiso.Error values that wrap the
// driver error; callers fail closed (login and token endpoints) or open
// (the API-wide limit), see docs/abuse-resistance.md.
type Limiter struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ permiso.RateLimiter = (*Limiter)(nil)

// NewLimiter returns the rate limiter over c whose keys all start with
// prefix (CACHE_RATE_LIMIT_PREFIX, for example "permiso:rate:").
func NewLimiter(c *Client, prefix string) *Limiter {
	return &Limiter{rdb: c.rdb, prefix: prefix}
}

func limiterUnavailable(err error) error {
	return permiso.Wrap(permiso.EUNAVAILABLE, "rate limiter unavailable", err)
}

// Allow counts one request for key under limit. A disabled limit admits
// everything and records nothing (no Redis call).
func (l *Limiter) Allow(ctx context.Context, key string, limit permiso.Limit) (permiso.LimitResult, error) {
	if limit.Disabled() {
		return permiso.LimitResult{Allowed: true}, nil
	}
	res, err := l.run(ctx, rand.Text(), []string{key}, []permiso.Limit{limit})
	if err != nil {
		return permiso.LimitResult{}, err
	}
	return res[0], nil
}

// Peek reports the state of key without counting a request.
func (l *Limiter) Peek(ctx context.Context, key string, limit permiso.Limit) (permiso.LimitResult, error) {
	if limit.Disabled() {
		return permiso.LimitResult{Allowed: true}, nil
	}
	res, err := l.run(ctx, "", []string{key}, []permiso.Limit{limit})
	if err != nil {
		return permiso.LimitResult{}, err
	}
	return res[0], nil
}

// AllowAll counts one request under every limit at once, in one script:
// the keys must share a hash slot on Redis Cluster (put the common part in
// a {hash tag}, as "client:{id}:minute" and "client:{id}:hour").
func (l *Limiter) AllowAll(ctx context.Context, keys []string, limits []permiso.Limit) ([]permiso.LimitResult, error) {
	if err := permiso.CheckLimitKeys(keys, limits); err != nil {
		return nil, err
	}
	return l.run(ctx, rand.Text(), keys, limits)
}

func (l *Limiter) run(ctx context.Context, member string, keys []string, limits []permiso.Limit) ([]permiso.LimitResult, error) {
	full, args := l.scriptArgs(member, keys, limits)
	v, err := limitScript.Run(ctx, l.rdb, full, args...).Int64Slice()
	if err != nil {
		return nil, limiterUnavailable(err)
	}
	return decodeLimits(v, limits)
}

// scriptArgs returns the KEYS and ARGV of limitScript for one check.
func (l *Limiter) scriptArgs(member string, keys []string, limits []permiso.Limit) ([]string, []any) {
	full := make([]string, len(keys))
	args := make([]any, 0, 1+2*len(keys))
	args = append(args, member)
	for i, k := range keys {
		full[i] = l.prefix + k
		lim := limits[i]
		if lim.Disabled() {
			args = append(args, 0, 0)
			continue
		}
		args = append(args, lim.Count, max(lim.Period.Microseconds(), 1))
	}
	return full, args
}

// decodeLimits turns limitScript's reply into one result per limit.
func decodeLimits(v []int64, limits []permiso.Limit) ([]permiso.LimitResult, error) {
	if len(v) != 2+3*len(limits) {
		return nil, permiso.Wrap(permiso.EINTERNAL, "rate limiter: unexpected reply", nil)
	}
	allowed := v[0] == 1
	out := make([]permiso.LimitResult, len(limits))
	for i, lim := range limits {
		if lim.Disabled() {
			out[i] = permiso.LimitResult{Allowed: allowed}
			if !allowed {
				out[i].RetryAfter = micros(v[1])
			}
			continue
		}
		used, reset, retry := int(v[2+3*i]), v[3+3*i], v[4+3*i]
		r := permiso.LimitResult{Allowed: allowed, Limit: lim.Count,
			Remaining: max(0, lim.Count-used), Reset: micros(reset)}
		if !allowed {
			r.RetryAfter = micros(max(retry, v[1]))
		}
		out[i] = r
	}
	return out, nil
}

func micros(n int64) time.Duration { return time.Duration(max(n, 0)) * time.Microsecond }
