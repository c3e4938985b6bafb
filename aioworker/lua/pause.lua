-- pause: pause or resume a queue.  While the paused key exists, fetch leases no job of
-- the queue (due scheduled jobs still move to ready; running jobs go on).  Resuming
-- wakes idle workers at once.
-- KEYS[1] paused STRING, KEYS[2] wake LIST
-- ARGV[1] 1 to pause, 0 to resume
-- returns 1 if the queue's state changed, 0 if it already was so
-- Moves no job; the wake LIST is type-checked before the first write.
local paused, wake = KEYS[1], KEYS[2]
aw_types(wake, 'list')
if ARGV[1] == '1' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if redis.call('SET', paused, now, 'NX') then return 1 end
  return 0
end
local changed = redis.call('DEL', paused)
redis.call('RPUSH', wake, 1)
redis.call('LTRIM', wake, -64, -1)
return changed
