-- cancel_poll: the jobs of a queue with a pending cancel request (checked by workers beside
-- their heartbeat); requests for jobs that no longer exist are dropped.
-- KEYS[1] cancel HASH, KEYS[2] jobs HASH
-- ARGV none
-- returns up to 1000 job ids with a pending request
-- Moves no job; both keys are type-checked before the first write.
local cancel, jobs = KEYS[1], KEYS[2]
aw_types(cancel, 'hash', jobs, 'hash')
local n = redis.call('HLEN', cancel)
if n == 0 then return {} end
local ids
if n <= 1000 then
  ids = redis.call('HKEYS', cancel)
else
  ids = redis.call('HRANDFIELD', cancel, 1000)
end
local out = {}
for _, id in ipairs(ids) do
  if redis.call('HEXISTS', jobs, id) == 1 then
    out[#out + 1] = id
  else
    redis.call('HDEL', cancel, id)
  end
end
return out
