-- retry: move a leased job back to its queue for another attempt, after a delay.
-- KEYS[1] active ZSET, KEYS[2] scheduled ZSET, KEYS[3] ready LIST, KEYS[4] leases HASH,
-- KEYS[5] errors HASH, KEYS[6] attempts HASH, KEYS[7] wake LIST, KEYS[8] group_of HASH,
-- KEYS[9] groups HASH
-- ARGV[1] job id, ARGV[2] lease token, ARGV[3] delay_ms, ARGV[4] error json ('' = keep),
-- ARGV[5] 1 to count the attempt, 0 to give it back (the job did not really run)
-- returns 1 if moved, 0 if this worker no longer holds the lease (nothing changed)
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails: every key written is type-checked first (a
-- wrong-typed key fails the call with WRONGTYPE having changed nothing).
-- An attempt count that is not an integer is left as it is (the next fetch dead-letters
-- the job as a corrupt record).
local active, scheduled, ready, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local errors, attempts, wake = KEYS[5], KEYS[6], KEYS[7]
local id, token, delay_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
aw_types(active, 'zset', scheduled, 'zset', ready, 'list', leases, 'hash', errors, 'hash',
  attempts, 'hash', wake, 'list', KEYS[8], 'hash', KEYS[9], 'hash')
if redis.call('HGET', leases, id) ~= token then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', active, id)
redis.call('HDEL', leases, id)
-- a job of a fair-share group no longer runs in its group (see fetch.lua)
local group = KEYS[9] and redis.call('HGET', KEYS[8], id)
if group then aw_hincr(KEYS[9], 'r:' .. group, -1) end
if ARGV[4] ~= '' then redis.call('HSET', errors, id, ARGV[4]) end
if ARGV[5] == '0' and aw_int(redis.call('HGET', attempts, id) or '0') then
  redis.call('HINCRBY', attempts, id, -1)
end
if delay_ms > 0 then
  redis.call('ZADD', scheduled, now + delay_ms, id)
else
  redis.call('RPUSH', ready, id)
end
redis.call('RPUSH', wake, 1)
redis.call('LTRIM', wake, -64, -1)
return 1
