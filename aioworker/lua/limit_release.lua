-- limit_release: give back a Concurrent hold, wake one blocked waiter, and name the oldest
-- waiting jobs a free slot could go to.
-- KEYS[1] holders ZSET, KEYS[2] since HASH, KEYS[3] wake LIST, KEYS[4] waits ZSET
-- ARGV[1] token, ARGV[2] the limit (also the most wake tokens kept)
-- returns {1, {oldest waiter ids, one per free slot}} if the token held a slot and freed
-- it; {0, {}} if it held none (released before, or its lease lapsed and the slot was taken
-- back): nothing changes then
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset', KEYS[2], 'hash', KEYS[3], 'list', KEYS[4], 'zset')
local holders, since, wake, waits = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, limit = ARGV[1], tonumber(ARGV[2])
if redis.call('ZREM', holders, token) == 0 then return {0, {}} end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local started = tonumber(redis.call('HGET', since, token))
redis.call('HDEL', since, token)
if started then
  local held = math.max(now_ms - started, 0)
  local mean = tonumber(redis.call('HGET', since, '~avg'))
  if mean then mean = mean + (held - mean) * 0.2 else mean = held end
  redis.call('HSET', since, '~avg', string.format('%.3f', mean))
  if redis.call('PTTL', since) < 60000 then redis.call('PEXPIRE', since, 60000) end
end
redis.call('RPUSH', wake, 1)
redis.call('LTRIM', wake, -limit, -1)
redis.call('PEXPIRE', wake, 10000)
local free = math.min(limit - redis.call('ZCARD', holders), 100)
if free < 1 then return {1, {}} end
return {1, redis.call('ZRANGE', waits, 0, free - 1)}
