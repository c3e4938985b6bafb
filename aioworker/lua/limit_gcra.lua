-- limit_gcra: the generic cell rate algorithm (GCRA limiter, a leaky bucket as a meter):
-- one unit per interval_us on average, with bursts of up to `burst` units.  Whatever the
-- calls, for any admissions i..j (in order): units(i..j) <= burst + (t_j - t_i) / interval.
-- KEYS[1] tat STRING (theoretical arrival time in us), KEYS[2] waits ZSET
-- ARGV[1] interval_us, ARGV[2] burst, ARGV[3] cost, ARGV[4] waiter id ('' = not tracked),
-- ARGV[5] max_wait_ms (0 = none), ARGV[6] forget_ms
-- returns {admitted 1|0, retry_ms, now_us, waited_ms}: retry_ms is when this call would
-- conform, plus `cost` intervals for each older waiter
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'string', KEYS[2], 'zset')
local key, waits = KEYS[1], KEYS[2]
local interval, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local waiter, max_wait, forget = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)

local function refused()
  if waiter == '' then return 0, 0 end
  redis.call('ZREMRANGEBYSCORE', waits, '-inf', now_ms - forget)
  redis.call('ZADD', waits, 'NX', now_ms, waiter)
  local waited = now_ms - tonumber(redis.call('ZSCORE', waits, waiter))
  local pos = redis.call('ZRANK', waits, waiter)
  if max_wait > 0 and waited >= max_wait then redis.call('ZREM', waits, waiter) end
  redis.call('PEXPIRE', waits, forget)
  return pos, waited
end

local tat = tonumber(redis.call('GET', key)) or now_us
if tat < now_us then tat = now_us end
local new_tat = tat + cost * interval
local allow_at = new_tat - burst * interval
if allow_at <= now_us then
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX',
    math.ceil((new_tat - now_us) / 1000) + 1)
  if waiter ~= '' then redis.call('ZREM', waits, waiter) end
  return {1, 0, now_us, 0}
end
local pos, waited = refused()
local retry_us = allow_at - now_us + pos * cost * interval
return {0, math.ceil(retry_us / 1000), now_us, waited}
