-- limit_promote: bring jobs deferred by a limiter forward to now, because a slot of the
-- limiter was freed for them; jobs no longer scheduled (already fetched, finished) or
-- scheduled for no later than now are left alone.
-- KEYS[1] scheduled ZSET of the jobs' queue, KEYS[2] wake LIST of the queue
-- ARGV job ids
-- returns how many jobs were brought forward
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset', KEYS[2], 'list')
local scheduled, wake = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local moved = 0
for i = 1, #ARGV do
  local at = tonumber(redis.call('ZSCORE', scheduled, ARGV[i]))
  if at and at > now then
    redis.call('ZADD', scheduled, 'XX', now, ARGV[i])
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('RPUSH', wake, 1)
  redis.call('LTRIM', wake, -64, -1)
end
return moved
