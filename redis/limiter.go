package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// limitScript is the sliding window of slots (docs/abuse-resistance.md)
// over one or more keys, in one atomic step. Each key is a hash of at most
// permiso.LimitSlots + 1 fields: the end of a slot of the limit's period,
// in microseconds of the Redis server's clock (TIME, so the instances'
// clocks do not matter), and the requests admitted in it. Its size does
// not depend on the limit's count.
//
// For each key it first gives back the requests a lease did not use (the
// give fields of ARGV, when that slot still exists), drops the slots whose
// end left the window (now-period, now], sums the rest and, when the key is
// full, finds when the slot that frees room leaves. The request is admitted
// only when every key has room; then (unless want is 0, a Peek) it counts
// granted = min(want, the room of every key) requests in the current slot
// of every key, whose TTL becomes its newest slot's end plus its period: an
// idle key disappears on its own. A count of 0 disables the limit of that
// key. A key left by the sorted-set log of earlier versions is converted on
// first use: its entries count as admitted in the slot of its newest one.
//
// A lease (ARGV[2] = 1) counts its requests in the slot after the
// current one: they are spent during at most one slot after they were
// counted, so each is still counted a whole period after it is spent.
//
// KEYS: the keys (one hash slot). ARGV[1] = want (1 for a request, 0 to
// peek, more for a lease), ARGV[2] = 1 for a lease; then for key i, from
// j = 5(i-1)+2: ARGV[j+1] = count, ARGV[j+2] = period µs, ARGV[j+3] =
// slot µs, ARGV[j+4] = the slot end of unused leased requests, ARGV[j+5] =
// how many (0 for none).
// Reply: {allowed, retry µs, granted, then per key: used, reset µs, retry
// µs, slot end µs}.
var limitScript = goredis.NewScript(limitScriptSrc)

const limitScriptSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local want = tonumber(ARGV[1])
local ahead = tonumber(ARGV[2])
local n = #KEYS
local used, reset, retry, cur, newest = {}, {}, {}, {}, {}
local allowed, maxretry, granted = 1, 0, want
for i = 1, n do
  local j = 5 * (i - 1) + 2
  local key = KEYS[i]
  local count, period, slot = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])
  local give = tonumber(ARGV[j + 5])
  used[i], reset[i], retry[i], cur[i], newest[i] = 0, 0, 0, 0, 0
  if count > 0 then
    cur[i] = (math.floor(now / slot) + 1 + ahead) * slot
    local h = redis.pcall('HGETALL', key)
    if h.err then
      local all = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
      redis.call('DEL', key)
      if #all > 0 then
        local e = (math.floor(tonumber(all[#all]) / slot) + 1) * slot
        redis.call('HSET', key, string.format('%d', e), #all / 2)
      end
      h = redis.call('HGETALL', key)
    end
    if give > 0 and redis.call('HEXISTS', key, ARGV[j + 4]) == 1 then
      if redis.call('HINCRBY', key, ARGV[j + 4], -give) <= 0 then
        redis.call('HDEL', key, ARGV[j + 4])
      end
      h = redis.call('HGETALL', key)
    end
    local live, u = {}, 0
    for f = 1, #h, 2 do
      local e = tonumber(h[f])
      if e + period <= now then
        redis.call('HDEL', key, h[f])
      else
        local c = tonumber(h[f + 1])
        u = u + c
        live[#live + 1] = {e, c}
        if e > newest[i] then newest[i] = e end
      end
    end
    used[i] = u
    if u > 0 then reset[i] = newest[i] + period - now end
    if count - u < granted then granted = math.max(count - u, 0) end
    if u >= count then
      allowed = 0
      table.sort(live, function(a, b) return a[1] < b[1] end)
      local left = u
      for _, s in ipairs(live) do
        left = left - s[2]
        if left < count then
          retry[i] = s[1] + period - now
          break
        end
      end
      if retry[i] > maxretry then maxretry = retry[i] end
    end
  end
end
if allowed == 0 then granted = 0 end
if granted > 0 then
  for i = 1, n do
    local j = 5 * (i - 1) + 2
    local period = tonumber(ARGV[j + 2])
    if tonumber(ARGV[j + 1]) > 0 then
      local e = math.max(cur[i], newest[i])
      redis.call('HINCRBY', KEYS[i], string.format('%d', e), granted)
      redis.call('PEXPIRE', KEYS[i], math.ceil((e + period - now) / 1000))
      used[i] = used[i] + granted
      reset[i] = e + period - now
      cur[i] = e
    end
  end
end
local out = {allowed, maxretry, granted}
for i = 1, n do
  out[#out + 1] = used[i]
  out[#out + 1] = reset[i]
  out[#out + 1] = retry[i]
  out[#out + 1] = cur[i]
end
return out
`

// Limiter is the permiso.RateLimiter shared by every instance: a
// sliding window of slots per key in Redis, under one key prefix
// (CACHE_RATE_LIMIT_PREFIX). Every call is one script run: one round trip,
// atomic, so the counts are exact under any concurrency, across instances.
// Callers' keys are appended to the prefix:
//
//	<prefix><key>   hash: slot end (µs) -> requests admitted in that slot,
//	                at most permiso.LimitSlots + 1 fields; TTL = the newest
//	                slot's end + the period
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
	res, err := l.run(ctx, 1, []string{key}, []permiso.Limit{limit})
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
	res, err := l.run(ctx, 0, []string{key}, []permiso.Limit{limit})
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
	return l.run(ctx, 1, keys, limits)
}

func (l *Limiter) run(ctx context.Context, want int, keys []string, limits []permiso.Limit) ([]permiso.LimitResult, error) {
	full, args := l.scriptArgs(want, false, keys, limits, nil)
	v, err := limitScript.Run(ctx, l.rdb, full, args...).Int64Slice()
	if err != nil {
		return nil, limiterUnavailable(err)
	}
	r, err := decodeLimits(v, limits)
	return r.results, err
}

// giveBack is what a lease did not use: n requests counted in the slot
// ending at end (µs), given back by the next run of limitScript on the key.
type giveBack struct {
	end int64
	n   int
}

// scriptArgs returns the KEYS and ARGV of limitScript for one check of
// want requests (0 to peek), a lease when lease is set; gives, when not
// nil, holds the unused requests of earlier leases to give back, one per
// key.
func (l *Limiter) scriptArgs(want int, lease bool, keys []string, limits []permiso.Limit, gives []giveBack) ([]string, []any) {
	full := make([]string, len(keys))
	args := make([]any, 0, 2+5*len(keys))
	ahead := 0
	if lease {
		ahead = 1
	}
	args = append(args, want, ahead)
	for i, k := range keys {
		full[i] = l.prefix + k
		lim := limits[i]
		var g giveBack
		if gives != nil {
			g = gives[i]
		}
		if lim.Disabled() {
			args = append(args, 0, 0, 0, 0, 0)
			continue
		}
		args = append(args, lim.Count, max(lim.Period.Microseconds(), 1), lim.Slot().Microseconds(), g.end, g.n)
	}
	return full, args
}

// scriptReply is limitScript's reply: one result per limit, how many
// requests were counted (granted), and the slot end they were counted in,
// per key.
type scriptReply struct {
	results []permiso.LimitResult
	granted int
	ends    []int64
}

// decodeLimits turns limitScript's reply into one result per limit.
func decodeLimits(v []int64, limits []permiso.Limit) (scriptReply, error) {
	if len(v) != 3+4*len(limits) {
		return scriptReply{}, permiso.Wrap(permiso.EINTERNAL, "rate limiter: unexpected reply", nil)
	}
	allowed := v[0] == 1
	out := scriptReply{results: make([]permiso.LimitResult, len(limits)), granted: int(v[2]), ends: make([]int64, len(limits))}
	for i, lim := range limits {
		f := v[3+4*i:]
		out.ends[i] = f[3]
		if lim.Disabled() {
			out.results[i] = permiso.LimitResult{Allowed: allowed}
			if !allowed {
				out.results[i].RetryAfter = micros(v[1])
			}
			continue
		}
		used, reset, retry := int(f[0]), f[1], f[2]
		r := permiso.LimitResult{Allowed: allowed, Limit: lim.Count,
			Remaining: max(0, lim.Count-used), Reset: micros(reset)}
		if !allowed {
			r.RetryAfter = micros(max(retry, v[1]))
		}
		out.results[i] = r
	}
	return out, nil
}

func micros(n int64) time.Duration { return time.Duration(max(n, 0)) * time.Microsecond }
