-- The limit script of the release before the summary field (see
-- limitScript and docs/abuse-resistance.md, "Algorithm: sliding window of
-- slots"): a key holds its slots only and every run reads it whole
-- (HGETALL). TestLimitScriptAsPreviousRelease runs it beside limitScript.
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
