-- cancel_done: a worker cancelled a running job at an operator's request: release its
-- lease, forget its data and record it as cancelled (fenced by the lease token).
-- KEYS[1] active ZSET, KEYS[2] leases HASH, KEYS[3] jobs HASH, KEYS[4] attempts HASH,
-- KEYS[5] state HASH, KEYS[6] errors HASH, KEYS[7] cancel HASH, KEYS[8] result STRING,
-- KEYS[9] done LIST, KEYS[10] batch_outbox LIST (a batch child appends
-- "<batch>|<id>|skipped"), KEYS[11] group_of HASH, KEYS[12] groups HASH (a cancelled job
-- of a fair-share group leaves its group's counts and frees its slot)
-- ARGV[1] job id, ARGV[2] lease token, ARGV[3] result json, ARGV[4] result_ttl_ms
-- returns 1 if recorded, 0 if this worker no longer holds the lease (nothing changed)
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails: every key written is type-checked first (a
-- wrong-typed key fails the call with WRONGTYPE having changed nothing).
local active, leases, jobs, attempts, state, errors, cancel = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, token, result_ttl = ARGV[1], ARGV[2], tonumber(ARGV[4])
aw_types(active, 'zset', leases, 'hash', jobs, 'hash', attempts, 'hash', state, 'hash',
  errors, 'hash', cancel, 'hash', KEYS[9], 'list', KEYS[10], 'list', KEYS[11], 'hash',
  KEYS[12], 'hash')
if redis.call('HGET', leases, id) ~= token then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', active, id)
redis.call('HDEL', leases, id)
local group = KEYS[12] and redis.call('HGET', KEYS[11], id)
if group then
  redis.call('HDEL', KEYS[11], id)
  aw_hincr(KEYS[12], 't:' .. group, -1)
  aw_hincr(KEYS[12], 'r:' .. group, -1)
end
local record = redis.call('HGET', jobs, id)
local sep = record and string.find(record, '|', 1, true)
if sep then
  local ok, body = pcall(cjson.decode, string.sub(record, sep + 1))
  if ok and type(body) == 'table' and type(body.b) == 'string' and body.b ~= '' then
    redis.call('RPUSH', KEYS[10], body.b .. '|' .. id .. '|skipped')
  end
end
redis.call('HDEL', jobs, id)
redis.call('HDEL', attempts, id)
redis.call('HDEL', state, id)
redis.call('HDEL', errors, id)
redis.call('HDEL', cancel, id)
if result_ttl > 0 then redis.call('SET', KEYS[8], now .. '|' .. ARGV[3], 'PX', result_ttl) end
redis.call('RPUSH', KEYS[9], 1)
redis.call('PEXPIRE', KEYS[9], 10000)
return 1
