-- queue_stats: one queue's counts, read atomically.
-- KEYS[1] ready LIST, KEYS[2] scheduled ZSET, KEYS[3] active ZSET, KEYS[4] dead ZSET,
-- KEYS[5] paused STRING, KEYS[6] cancel HASH, KEYS[7] fair ZSET (ready jobs of fair-share
-- groups, counted as ready)
-- ARGV none
-- returns {now_ms, ready, scheduled, running, dead, paused_at_ms or -1, due, expired,
--   cancel requests}
--   due: scheduled jobs whose run time has come (moved to ready by the next fetch)
--   expired: running jobs whose lease deadline passed (their worker stopped renewing it)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'list', KEYS[2], 'zset', KEYS[3], 'zset', KEYS[4], 'zset', KEYS[5], 'string',
  KEYS[6], 'hash', KEYS[7], 'zset')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[5]) or '-1') or 0
local fair = 0
if KEYS[7] then fair = redis.call('ZCARD', KEYS[7]) end
return {
  now,
  redis.call('LLEN', KEYS[1]) + fair,
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  paused,
  redis.call('ZCOUNT', KEYS[2], '-inf', now),
  redis.call('ZCOUNT', KEYS[3], '-inf', now),
  redis.call('HLEN', KEYS[6]),
}
