-- cancel: an operator cancels one job.  A queued or scheduled job is removed and marked
-- cancelled at once; a running job gets a cancel request that the worker running it acts
-- on at its next check (cancel_poll); a running job whose lease expired (its worker died)
-- is cancelled at once.  Dead-lettered and finished jobs are left alone.
-- KEYS[1] ready LIST, KEYS[2] scheduled ZSET, KEYS[3] active ZSET, KEYS[4] dead ZSET,
-- KEYS[5] jobs HASH, KEYS[6] attempts HASH, KEYS[7] leases HASH, KEYS[8] state HASH,
-- KEYS[9] errors HASH, KEYS[10] cancel HASH, KEYS[11] result STRING, KEYS[12] done LIST,
-- KEYS[13] batch_outbox LIST (a cancelled batch child appends "<batch>|<id>|skipped"),
-- KEYS[14] fair ZSET, KEYS[15] groups HASH, KEYS[16] group_of HASH (a cancelled job of a
-- fair-share group leaves its group's counts, and its slot if it was running)
-- ARGV[1] job id, ARGV[2] result_ttl_ms (0 = keep no result)
-- returns {outcome, where it was}: outcome cancelled | requested | dead | finished | missing;
--   where: queued | scheduled | running | dead | finished | missing
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails: every key written is type-checked first (a
-- wrong-typed key fails the call with WRONGTYPE having changed nothing).
local ready, scheduled, active, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local jobs, attempts, leases, state, errors, cancel = KEYS[5], KEYS[6], KEYS[7], KEYS[8],
  KEYS[9], KEYS[10]
local id, result_ttl = ARGV[1], tonumber(ARGV[2])
aw_types(ready, 'list', scheduled, 'zset', active, 'zset', dead, 'zset', jobs, 'hash',
  attempts, 'hash', leases, 'hash', state, 'hash', errors, 'hash', cancel, 'hash',
  KEYS[12], 'list', KEYS[13], 'list', KEYS[14], 'zset', KEYS[15], 'hash', KEYS[16], 'hash')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function finish(was_running)
  local group = KEYS[16] and redis.call('HGET', KEYS[16], id)
  if group then
    redis.call('HDEL', KEYS[16], id)
    redis.call('ZREM', KEYS[14], id)
    aw_hincr(KEYS[15], 't:' .. group, -1)
    if was_running then aw_hincr(KEYS[15], 'r:' .. group, -1) end
  end
  local record = redis.call('HGET', jobs, id)
  local task = 'null'
  local batch = nil
  if record then
    local sep = string.find(record, '|', 1, true)
    if sep then
      local ok, body = pcall(cjson.decode, string.sub(record, sep + 1))
      if ok and type(body) == 'table' and type(body.t) == 'string' then
        task = cjson.encode(body.t)
        if type(body.b) == 'string' and body.b ~= '' then batch = body.b end
      end
    end
  end
  local n = aw_int(redis.call('HGET', attempts, id) or '0') or 0
  redis.call('HDEL', jobs, id)
  redis.call('HDEL', attempts, id)
  redis.call('HDEL', leases, id)
  redis.call('HDEL', state, id)
  redis.call('HDEL', errors, id)
  redis.call('HDEL', cancel, id)
  if result_ttl > 0 then
    redis.call('SET', KEYS[11], now .. '|{"s":"cancelled","n":' .. n .. ',"t":' .. task .. '}',
      'PX', result_ttl)
  end
  redis.call('RPUSH', KEYS[12], 1)
  redis.call('PEXPIRE', KEYS[12], 10000)
  if batch then redis.call('RPUSH', KEYS[13], batch .. '|' .. id .. '|skipped') end
end

local lease = redis.call('ZSCORE', active, id)
if lease then
  if (tonumber(lease) or 0) > now then
    redis.call('HSET', cancel, id, now)
    return {'requested', 'running'}
  end
  redis.call('ZREM', active, id)
  finish(true)
  return {'cancelled', 'running'}
end
if redis.call('ZSCORE', dead, id) then return {'dead', 'dead'} end
if redis.call('ZREM', scheduled, id) == 1 then
  finish()
  return {'cancelled', 'scheduled'}
end
if redis.call('HEXISTS', jobs, id) == 1 then
  redis.call('LREM', ready, 1, id)
  finish()
  return {'cancelled', 'queued'}
end
if redis.call('EXISTS', KEYS[11]) == 1 then return {'finished', 'finished'} end
return {'missing', 'missing'}
