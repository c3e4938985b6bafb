-- cron_state: read or change the state of one periodic schedule.
-- KEYS[1] schedule HASH (last, paused, job)
-- ARGV[1] op: 'get' (read only); 'init' (start the marker at Redis TIME unless it exists:
--   a new schedule never fires for ticks before it was first seen); 'pause' (keep the
--   first paused_at if already paused); 'resume' (clear the pause and raise the marker to
--   now, so ticks that fell in the pause never run late)
-- returns {now_ms, marker_ms or -1, paused_at_ms or -1, last job id or ''}
local sched = KEYS[1]
aw_types(sched, 'hash')
local op = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if op == 'init' then
  redis.call('HSETNX', sched, 'last', now)
elseif op == 'pause' then
  redis.call('HSETNX', sched, 'paused', now)
  redis.call('HSETNX', sched, 'last', now)
elseif op == 'resume' then
  redis.call('HDEL', sched, 'paused')
  local last = tonumber(redis.call('HGET', sched, 'last')) or -1
  if last < now then redis.call('HSET', sched, 'last', now) end
end
local v = redis.call('HMGET', sched, 'last', 'paused', 'job')
return {now, tonumber(v[1]) or -1, tonumber(v[2]) or -1, v[3] or ''}
