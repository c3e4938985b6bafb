-- limit_points: spend `cost` points of a budget that refills continuously (Points limiter):
-- `capacity` points at most, refilled at capacity per per_ms.  A call is admitted when the
-- points left cover its cost; for any admissions i..j (in order):
-- cost(i..j) <= capacity + (t_j - t_i) * capacity / per.
-- KEYS[1] points HASH (p = points left at time t, t = that time in us), KEYS[2] waits ZSET
-- ARGV[1] capacity, ARGV[2] per_ms, ARGV[3] cost, ARGV[4] waiter id ('' = not tracked),
-- ARGV[5] max_wait_ms (0 = none), ARGV[6] forget_ms
-- returns {admitted 1|0, retry_ms, now_us, waited_ms}: retry_ms is when enough points have
-- refilled for this call and the `cost` of each older waiter
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'hash', KEYS[2], 'zset')
local key, waits = KEYS[1], KEYS[2]
local capacity, per, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local waiter, max_wait, forget = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)
local rate = capacity / (per * 1000) -- points per microsecond

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

local stored = redis.call('HMGET', key, 'p', 't')
local left = capacity
if stored[1] then
  local elapsed = now_us - tonumber(stored[2])
  if elapsed < 0 then elapsed = 0 end
  left = math.min(capacity, tonumber(stored[1]) + elapsed * rate)
end
if left >= cost then
  left = left - cost
  redis.call('HSET', key, 'p', string.format('%.17g', left), 't', string.format('%.0f', now_us))
  redis.call('PEXPIRE', key, math.ceil((capacity - left) / rate / 1000) + 1)
  if waiter ~= '' then redis.call('ZREM', waits, waiter) end
  return {1, 0, now_us, 0}
end
local pos, waited = refused()
return {0, math.ceil((cost * (pos + 1) - left) / rate / 1000), now_us, waited}
