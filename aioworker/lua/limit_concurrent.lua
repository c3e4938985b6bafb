-- limit_concurrent: take one of `limit` slots (Concurrent limiter) under a lease.  A hold
-- whose lease deadline has passed (its holder crashed or stopped renewing) is taken back
-- here.  Acquiring again with a token that holds a slot renews it.
-- KEYS[1] holders ZSET (token -> lease deadline in ms), KEYS[2] since HASH (token ->
-- acquired_ms, '~avg' -> mean hold in ms), KEYS[3] waits ZSET
-- ARGV[1] limit, ARGV[2] token, ARGV[3] lease_ms, ARGV[4] waiter id ('' = not tracked),
-- ARGV[5] max_wait_ms (0 = none), ARGV[6] forget_ms
-- returns {admitted 1|0, retry_ms, now_us, waited_ms}: retry_ms estimates when a slot frees
-- up for this caller from the mean hold time (mean / holders per waiter ahead, plus one)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset', KEYS[2], 'hash', KEYS[3], 'zset')
local holders, since, waits = KEYS[1], KEYS[2], KEYS[3]
local limit, token, lease = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
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

local function keep(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

local lapsed = redis.call('ZRANGEBYSCORE', holders, '-inf', now_ms)
if #lapsed > 0 then
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now_ms)
  for i = 1, #lapsed do redis.call('HDEL', since, lapsed[i]) end
end
local held = redis.call('ZCARD', holders)
local mine = redis.call('ZSCORE', holders, token)
if mine or held < limit then
  redis.call('ZADD', holders, now_ms + lease, token)
  if not mine then redis.call('HSET', since, token, now_ms) end
  keep(holders, lease)
  keep(since, math.max(lease, 60000))
  if waiter ~= '' then redis.call('ZREM', waits, waiter) end
  return {1, 0, now_us, 0}
end
local pos, waited = refused()
local mean = tonumber(redis.call('HGET', since, '~avg'))
if not mean then
  -- no hold finished yet: assume the oldest lease runs out, at most a second from now
  local first = redis.call('ZRANGE', holders, 0, 0, 'WITHSCORES')
  mean = math.min(tonumber(first[2]) - now_ms, 1000)
end
local retry = math.ceil(mean * (pos + 1) / math.max(held, 1))
return {0, math.max(retry, 1), now_us, waited}
