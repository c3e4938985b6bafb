-- limit_bucket: take `cost` units from a fixed window (Bucket limiter).
-- Windows are aligned to multiples of per_ms in Redis time: [w * per, (w + 1) * per).
-- KEYS[1] bucket HASH (w = current window index, n = units used in it), KEYS[2] waits ZSET
-- ARGV[1] limit, ARGV[2] per_ms, ARGV[3] cost, ARGV[4] waiter id ('' = not tracked),
-- ARGV[5] max_wait_ms (0 = none), ARGV[6] forget_ms
-- returns {admitted 1|0, retry_ms, now_us, waited_ms}: retry_ms estimates when this caller
-- gets its units (the window's end, plus a window per `limit` units of older waiters);
-- waited_ms is how long the waiter has been refused (its clock restarts once it reaches
-- max_wait_ms or it is admitted)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'hash', KEYS[2], 'zset')
local bucket, waits = KEYS[1], KEYS[2]
local limit, per, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
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

local w = math.floor(now_ms / per)
local ends = (w + 1) * per
local stored = redis.call('HMGET', bucket, 'w', 'n')
local used = 0
if tonumber(stored[1]) == w then used = tonumber(stored[2]) or 0 end
if used + cost <= limit then
  redis.call('HSET', bucket, 'w', string.format('%.0f', w), 'n', used + cost)
  redis.call('PEXPIRE', bucket, ends - now_ms)
  if waiter ~= '' then redis.call('ZREM', waits, waiter) end
  return {1, 0, now_us, 0}
end
local pos, waited = refused()
-- this caller's units come after those of the older waiters: whole windows after this one
local windows = math.ceil(cost * (pos + 1) / limit) - 1
return {0, ends - now_ms + windows * per, now_us, waited}
