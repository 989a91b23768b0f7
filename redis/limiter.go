package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// limitScript is the sliding window of slots (docs/abuse-resistance.md)
// over one or more keys, in one atomic step. Each key is a hash of at most
// permiso.LimitSlots + 1 slot fields: the end of a slot of the limit's
// period, in microseconds of the Redis server's clock (TIME, so the
// instances' clocks do not matter), and the requests admitted in it; and
// one summary field "0" = "total oldest newest period": the sum of the
// slots, the ends of the oldest and the newest slot and the period they
// are slots of. Its size does not depend on the limit's count.
//
// For each key it first gives back the requests a lease did not use (the
// give fields of ARGV, when that slot still exists), drops the slots whose
// end left the window (now-period, now] and, when the key is full, finds
// when the slot that frees room leaves. The request is admitted only when
// every key has room; then (unless want is 0, a Peek) it counts granted =
// min(want, the room of every key) requests in the current slot of every
// key, whose TTL becomes its newest slot's end plus its period: an idle
// key disappears on its own. A count of 0 disables the limit of that key.
//
// The summary makes a run cost the same whatever the slots: the slots
// that left the window since the last run are read and deleted from the
// oldest on (each once), and a refused request reads the slots from the
// oldest until one frees room (usually the oldest alone). A key without a
// summary, or with one of another period, is read whole once (HGETALL) and
// gets one: a new key, a key written by the previous release (slot fields
// only; that release drops field "0" as a slot that ended long ago, so
// either release may touch a key during a rolling upgrade), or a key whose
// limit changed period (its slots are ends of other slots: it is read
// whole, without a summary, until they have left). A key left by the
// sorted-set log of earlier versions is converted on first use: its
// entries count as admitted in the slot of its newest one.
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
local used, reset, retry, cur, newest, oldest, write, had = {}, {}, {}, {}, {}, {}, {}, {}
local allowed, maxretry, granted = 1, 0, want
local function field(e) return string.format('%d', e) end
-- the values of the slots ending at a, a + slot, ..., b
local function slots(key, a, b, slot)
  local f = {}
  for e = a, b, slot do f[#f + 1] = field(e) end
  return redis.call('HMGET', key, unpack(f))
end
-- the end of the first (last when back) slot from a to b that exists, or 0
local function find(key, a, b, slot, back)
  if a > b then return 0 end
  local v = slots(key, a, b, slot)
  local k0, k1, d = 1, #v, 1
  if back then k0, k1, d = #v, 1, -1 end
  for k = k0, k1, d do
    if v[k] then return a + (k - 1) * slot end
  end
  return 0
end
-- gives back n requests of slot f: what it took from the slot, and
-- whether that emptied (deleted) it
local function giveback(key, f, n)
  if n > 0 and redis.call('HEXISTS', key, f) == 1 then
    local r = redis.call('HINCRBY', key, f, -n)
    if r <= 0 then
      redis.call('HDEL', key, f)
      return n + r, true
    end
    return n, false
  end
  return 0, false
end
for i = 1, n do
  local j = 5 * (i - 1) + 2
  local key = KEYS[i]
  local count, period, slot = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])
  local give = tonumber(ARGV[j + 5])
  used[i], reset[i], retry[i], cur[i], newest[i], oldest[i] = 0, 0, 0, 0, 0, 0
  if count > 0 then
    cur[i] = (math.floor(now / slot) + 1 + ahead) * slot
    local m = redis.pcall('HGET', key, '0')
    if type(m) == 'table' then
      -- not a hash: the sorted set of an older release becomes one slot;
      -- a key of any other type is not ours and starts over
      local all = {}
      if redis.call('TYPE', key).ok == 'zset' then
        all = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
      end
      redis.call('DEL', key)
      if #all > 0 then
        local e = (math.floor(tonumber(all[#all]) / slot) + 1) * slot
        redis.call('HSET', key, field(e), #all / 2)
      end
      m = false
    end
    had[i] = m and true
    local u, o, w, p, live
    if m then u, o, w, p = string.match(m, '^(%d+) (%d+) (%d+) (%d+)$') end
    if p then u, o, w, p = tonumber(u), tonumber(o), tonumber(w), tonumber(p) end
    -- a summary is trusted only when it can describe a window: its slots
    -- at most a period and the slots ahead apart, none beyond them, its
    -- total below 2^53; any other (written by hand, or corrupt) is
    -- replaced by reading the key whole, which costs what the key holds
    -- rather than what the summary claims
    local span = period + (2 + ahead) * slot
    if p == period and u < 9007199254740992 and ((u == 0 and o == 0 and w == 0) or
        (u > 0 and o > 0 and o <= w and w - o <= span and w <= now + span and
         math.fmod(o, slot) == 0 and math.fmod(w, slot) == 0)) then
      local took, gone = giveback(key, ARGV[j + 4], give)
      if took > 0 then
        write[i] = 1
        u = u - took
        local g = tonumber(ARGV[j + 4])
        if u <= 0 then
          u, o, w = 0, 0, 0
        elseif gone and g == o then
          o = find(key, o + slot, w, slot)
        elseif gone and g == w then
          w = find(key, o, w - slot, slot, true)
        end
      end
      if u > 0 and o + period <= now then
        -- the slots that left the window since the last run, and the
        -- first that may still be in it
        write[i] = 1
        local b = math.min(w, (math.floor((now - period) / slot) + 1) * slot)
        local v = slots(key, o, b, slot)
        local drop, e, first = {}, o, 0
        for k = 1, #v do
          if v[k] then
            if e + period > now then
              first = e
              break
            end
            drop[#drop + 1] = field(e)
            u = u - tonumber(v[k])
          end
          e = e + slot
        end
        if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
        if first == 0 then first = find(key, b + slot, w, slot) end
        o = first
        if o == 0 then u, w = 0, 0 end
      end
    else
      -- no summary of this period: read the key whole
      write[i] = 1
      giveback(key, ARGV[j + 4], give)
      local h = redis.call('HGETALL', key)
      u, o, w, live = 0, 0, 0, {}
      for f = 1, #h, 2 do
        local e, c = tonumber(h[f]), tonumber(h[f + 1])
        if h[f] == '0' then
        elseif not e or not c or e <= 0 or c ~= math.floor(c) or e + period <= now then
          -- gone from the window, or not a slot of ours: dropped
          redis.call('HDEL', key, h[f])
        else
          u = u + c
          live[#live + 1] = {e, c}
          if e > w then w = e end
          if o == 0 or e < o then o = e end
          if math.fmod(e, slot) ~= 0 then write[i] = 2 end
        end
      end
    end
    used[i], oldest[i], newest[i] = u, o, w
    if u > 0 then reset[i] = w + period - now end
    if count - u < granted then granted = math.max(count - u, 0) end
    if u >= count then
      allowed = 0
      local left = u
      if live then
        table.sort(live, function(x, y) return x[1] < y[1] end)
        for _, s in ipairs(live) do
          left = left - s[2]
          if left < count then
            retry[i] = s[1] + period - now
            break
          end
        end
      else
        -- from the oldest slot: it alone frees room unless the limit
        -- was lowered
        local a, b = o, o
        while retry[i] == 0 and a <= w do
          local v = slots(key, a, b, slot)
          for k = 1, #v do
            if v[k] then
              left = left - tonumber(v[k])
              if left < count then
                retry[i] = a + (k - 1) * slot + period - now
                break
              end
            end
          end
          a, b = b + slot, w
        end
      end
      if retry[i] > maxretry then maxretry = retry[i] end
    end
  end
end
if allowed == 0 then granted = 0 end
for i = 1, n do
  local j = 5 * (i - 1) + 2
  local period = tonumber(ARGV[j + 2])
  if tonumber(ARGV[j + 1]) > 0 then
    if granted > 0 then
      local e = math.max(cur[i], newest[i])
      redis.call('HINCRBY', KEYS[i], field(e), granted)
      redis.call('PEXPIRE', KEYS[i], math.ceil((e + period - now) / 1000))
      used[i] = used[i] + granted
      reset[i] = e + period - now
      cur[i], newest[i] = e, e
      if oldest[i] == 0 then oldest[i] = e end
      write[i] = write[i] or 1
    end
    if write[i] == 1 and used[i] > 0 then
      redis.call('HSET', KEYS[i], '0', string.format('%d %d %d %d', used[i], oldest[i], newest[i], period))
    elseif write[i] and had[i] then
      redis.call('HDEL', KEYS[i], '0')
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
//	                at most permiso.LimitSlots + 1 of them, and the summary
//	                0 -> "total oldest newest period"; TTL = the newest
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
	return l.runOne(ctx, 1, key, limit)
}

// Peek reports the state of key without counting a request.
func (l *Limiter) Peek(ctx context.Context, key string, limit permiso.Limit) (permiso.LimitResult, error) {
	return l.runOne(ctx, 0, key, limit)
}

// runOne is run for one key under one limit; a disabled limit admits
// without a Redis call.
func (l *Limiter) runOne(ctx context.Context, want int, key string, limit permiso.Limit) (permiso.LimitResult, error) {
	if limit.Disabled() {
		return permiso.LimitResult{Allowed: true}, nil
	}
	res, err := l.run(ctx, want, []string{key}, []permiso.Limit{limit})
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
