-- limit_window: take `cost` units from a sliding window (Window limiter): at most `limit`
-- units are admitted in any interval of per_ms.  A unit admitted at time t counts until
-- t + per (exclusive), exact to the microsecond of Redis TIME.
-- KEYS[1] log ZSET (one member per admitted unit -> admission time in us), KEYS[2] waits ZSET
-- ARGV[1] limit, ARGV[2] per_ms, ARGV[3] cost, ARGV[4] unit id (unique per call),
-- ARGV[5] waiter id ('' = not tracked), ARGV[6] max_wait_ms (0 = none), ARGV[7] forget_ms
-- returns {admitted 1|0, retry_ms, now_us, waited_ms}: retry_ms is when enough units will
-- have left the window for this caller and the older waiters (`cost` units each)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset', KEYS[2], 'zset')
local log, waits = KEYS[1], KEYS[2]
local limit, per, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local unit, waiter = ARGV[4], ARGV[5]
local max_wait, forget = tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)
local per_us = per * 1000

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

-- a unit admitted at t <= now - per has left the window
redis.call('ZREMRANGEBYSCORE', log, '-inf', now_us - per_us)
local count = redis.call('ZCARD', log)
if count + cost <= limit then
  local args = {}
  for i = 1, cost do
    args[#args + 1] = now_us
    args[#args + 1] = unit .. ':' .. i
    if #args >= 1000 or i == cost then
      redis.call('ZADD', log, unpack(args))
      args = {}
    end
  end
  redis.call('PEXPIRE', log, per + 1)
  if waiter ~= '' then redis.call('ZREM', waits, waiter) end
  return {1, 0, now_us, 0}
end
local pos, waited = refused()
-- the unit that must leave last before this caller fits (0-based, oldest first), counting
-- `cost` units for each older waiter; units not admitted yet are taken to be admitted as
-- the current ones leave, so unit i leaves at log[i % count] + (i // count + 1) * per
local i = count + cost * (pos + 1) - limit - 1
local e = redis.call('ZRANGE', log, i % count, i % count, 'WITHSCORES')
local retry_us = tonumber(e[2]) + (math.floor(i / count) + 1) * per_us - now_us
return {0, math.ceil(retry_us / 1000), now_us, waited}
