-- cron_tick: enqueue the job of one schedule tick at most once, or skip ticks, by moving
-- the schedule's marker forward: compare-and-set on the marker and the enqueue in one step.
-- The marker means "every tick at or before this time was enqueued or deliberately
-- skipped", so a tick is never enqueued twice, whoever calls, even after its job's result
-- expired.  Due-ness is judged on Redis TIME, never on the caller's clock.  The job is
-- written as enqueue.lua writes a plain job that is ready now ("<now_ms>|<payload>" in
-- jobs, id pushed on ready, one wake token): schedules use no delay, group or unique lock.
-- KEYS[1] schedule HASH (last, paused, job), KEYS[2] ready LIST, KEYS[3] jobs HASH,
-- KEYS[4] wake LIST, KEYS[5] result STRING of the tick's job
-- ARGV[1] tick_ms, ARGV[2] marker_ms (the new marker; raised to tick_ms if lower),
-- ARGV[3] job id ('' = skip the tick: move the marker, enqueue nothing), ARGV[4] payload json
-- returns {code, now_ms, marker_ms}:
--   1 enqueued; 2 a job with that id already existed (marker moved, nothing enqueued);
--   3 paused (marker moved, nothing enqueued); 4 skipped as asked (marker moved);
--   0 the tick is at or before the marker (nothing changed; a marker that did not exist
--     is started at now); -1 the tick is not due yet by Redis TIME (nothing changed)
-- Invariant: a job it creates is in ready with its record, in one step; every key written
-- is type-checked first (a wrong-typed key fails the call having changed nothing), and a
-- marker that is not a number counts as missing.
local sched, ready, jobs, wake, result = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
aw_types(sched, 'hash', ready, 'list', jobs, 'hash', wake, 'list')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tick, marker = tonumber(ARGV[1]), tonumber(ARGV[2])
local id, payload = ARGV[3], ARGV[4]
local last = tonumber(redis.call('HGET', sched, 'last'))
if not last then
  -- a schedule whose state vanished starts again from now, like a new one
  redis.call('HSET', sched, 'last', now)
  return {0, now, now}
end
if tick > now then return {-1, now, last} end
if tick <= last then return {0, now, last} end
if marker < tick then marker = tick end
if redis.call('HEXISTS', sched, 'paused') == 1 then
  redis.call('HSET', sched, 'last', marker)
  return {3, now, marker}
end
if id == '' then
  redis.call('HSET', sched, 'last', marker)
  return {4, now, marker}
end
local code = 2
if redis.call('HEXISTS', jobs, id) == 0 and redis.call('EXISTS', result) == 0 then
  redis.call('HSET', jobs, id, now .. '|' .. payload)
  redis.call('RPUSH', ready, id)
  redis.call('RPUSH', wake, 1)
  redis.call('LTRIM', wake, -64, -1)
  code = 1
end
redis.call('HSET', sched, 'last', marker, 'job', id)
return {code, now, marker}
