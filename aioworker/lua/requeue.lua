-- requeue: return an interrupted job to the front of its queue with its last checkpoint,
-- without counting the interrupted run as an attempt (used on shutdown).
-- KEYS[1] active ZSET, KEYS[2] ready LIST, KEYS[3] leases HASH, KEYS[4] attempts HASH,
-- KEYS[5] state HASH, KEYS[6] wake LIST, KEYS[7] group_of HASH, KEYS[8] groups HASH
-- ARGV[1] job id, ARGV[2] lease token, ARGV[3] final checkpoint json ('' = keep the last one)
-- returns 1 if requeued, 0 if this worker no longer holds the lease (nothing changed)
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails: every key written is type-checked first (a
-- wrong-typed key fails the call with WRONGTYPE having changed nothing).
-- An attempt count that is not an integer is left as it is (the next fetch dead-letters
-- the job as a corrupt record).
local active, ready, leases, attempts, state, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5], KEYS[6]
local id, token = ARGV[1], ARGV[2]
aw_types(active, 'zset', ready, 'list', leases, 'hash', attempts, 'hash', state, 'hash',
  wake, 'list', KEYS[7], 'hash', KEYS[8], 'hash')
if redis.call('HGET', leases, id) ~= token then return 0 end
redis.call('ZREM', active, id)
redis.call('HDEL', leases, id)
-- a job of a fair-share group no longer runs in its group (see fetch.lua)
local group = KEYS[8] and redis.call('HGET', KEYS[7], id)
if group then aw_hincr(KEYS[8], 'r:' .. group, -1) end
if aw_int(redis.call('HGET', attempts, id) or '0') then
  redis.call('HINCRBY', attempts, id, -1)
end
if ARGV[3] ~= '' then redis.call('HSET', state, id, ARGV[3]) end
redis.call('LPUSH', ready, id)
redis.call('RPUSH', wake, 1)
redis.call('LTRIM', wake, -64, -1)
return 1
