-- limit_peek: what one limiter name's keys hold now, read-only (dashboards, inspection).
-- KEYS[1] holders ZSET (Concurrent: token -> lease deadline ms), KEYS[2] waits ZSET
-- (waiter id -> first refusal ms), KEYS[3] log ZSET (Window: unit -> admission time us),
-- KEYS[4] bucket HASH (Bucket: w -> window index, n -> units used in it)
-- ARGV[1] per_ms (Window and Bucket; 0 for the other kinds)
-- returns {live holds, waiters, units admitted in the last per_ms, units used in the
-- current fixed window}
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset', KEYS[2], 'zset', KEYS[3], 'zset', KEYS[4], 'hash')
local holders, waits, log, bucket = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local per = tonumber(ARGV[1])
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)

local held = redis.call('ZCOUNT', holders, string.format('(%d', now_ms), '+inf')
local waiting = redis.call('ZCARD', waits)
local in_window, in_bucket = 0, 0
if per > 0 then
  in_window = redis.call('ZCOUNT', log, string.format('(%d', now_us - per * 1000), '+inf')
  local stored = redis.call('HMGET', bucket, 'w', 'n')
  if stored[1] and tonumber(stored[1]) == math.floor(now_ms / per) then
    in_bucket = tonumber(stored[2]) or 0
  end
end
return {held, waiting, in_window, in_bucket}
