-- dead: move a leased job to the dead-letter set with its error, record the failure as
-- its result, and trim the dead-letter set by age and count.
-- KEYS[1] active ZSET, KEYS[2] dead ZSET, KEYS[3] leases HASH, KEYS[4] errors HASH,
-- KEYS[5] jobs HASH, KEYS[6] attempts HASH, KEYS[7] state HASH, KEYS[8] result STRING,
-- KEYS[9] done LIST, KEYS[10] batch_outbox LIST
-- ARGV[1] job id, ARGV[2] lease token, ARGV[3] error json, ARGV[4] result json,
-- ARGV[5] result_ttl_ms, ARGV[6] max dead jobs kept, ARGV[7] dead job max age in ms,
-- ARGV[8] batch id ('' or absent = not a batch child; else "<batch id>|<job id>|failed"
--   is appended to the outbox)
-- the last two keys: group_of HASH and groups HASH (fair-share group counters)
-- returns 1 if dead-lettered, 0 if this worker no longer holds the lease (nothing changed)
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails: every key written is type-checked first (a
-- wrong-typed key fails the call with WRONGTYPE having changed nothing).
local active, dead, leases, errors = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local jobs, attempts, state = KEYS[5], KEYS[6], KEYS[7]
local group_of, groups = KEYS[#KEYS - 1], KEYS[#KEYS]
local id, token = ARGV[1], ARGV[2]
local result_ttl, max_dead, max_age = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
aw_types(active, 'zset', dead, 'zset', leases, 'hash', errors, 'hash', jobs, 'hash',
  attempts, 'hash', state, 'hash', KEYS[9], 'list', KEYS[10], 'list', group_of, 'hash',
  groups, 'hash')
if redis.call('HGET', leases, id) ~= token then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', active, id)
redis.call('HDEL', leases, id)
redis.call('HSET', errors, id, ARGV[3])
redis.call('ZADD', dead, now, id)
local group = redis.call('HGET', group_of, id)
if group then
  aw_hincr(groups, 'r:' .. group, -1)
  aw_hincr(groups, 'x:' .. group, 1)
end
if result_ttl > 0 then redis.call('SET', KEYS[8], now .. '|' .. ARGV[4], 'PX', result_ttl) end
redis.call('RPUSH', KEYS[9], 1)
redis.call('PEXPIRE', KEYS[9], 10000)
if ARGV[8] and ARGV[8] ~= '' then redis.call('RPUSH', KEYS[10], ARGV[8] .. '|' .. id .. '|failed') end

aw_trim_dead(dead, {jobs, attempts, state, errors, group_of}, now, max_dead, max_age)
return 1
