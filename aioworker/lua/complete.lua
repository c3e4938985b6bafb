-- complete: record the results of finished jobs and release their leases (batched ack).
-- KEYS[1] active ZSET, KEYS[2] jobs HASH, KEYS[3] attempts HASH, KEYS[4] leases HASH,
-- KEYS[5] state HASH, KEYS[6] errors HASH, KEYS[7] batch_outbox LIST,
-- KEYS[6+2i] result STRING and KEYS[7+2i] done LIST of the i-th job
-- ARGV[1] result_ttl_ms (0 = keep no result), then for each job 4 values:
--   id, lease token, result json, batch id ('' = not a batch child; else
--   "<batch id>|<job id>|ok" is appended to the outbox with the ack)
-- the last three keys: wake LIST, group_of HASH and groups HASH (fair-share groups: a
--   slot freed in a group with a concurrency cap wakes an idle worker)
-- returns a table with one entry per job: 1 = recorded, 0 = the lease was lost (another
--   worker owns the job now; nothing was changed for it)
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails: every key written is type-checked first (a
-- wrong-typed key fails the call with WRONGTYPE having changed nothing).
local active, jobs, attempts, leases, state, errors = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5], KEYS[6]
local ttl = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local n = (#ARGV - 1) / 4
local wake, group_of, groups = KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS]
local woken = false
aw_types(active, 'zset', jobs, 'hash', attempts, 'hash', leases, 'hash', state, 'hash',
  errors, 'hash', KEYS[7], 'list', wake, 'list', group_of, 'hash', groups, 'hash')
-- a job's result STRING and done LIST are its own: SET replaces a key of any type, and a
-- done marker of another type is replaced too (checking them first would cost a call per
-- job)
for i = 1, n do
  local base = 1 + (i - 1) * 4
  local id, token, result, batch = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4]
  if redis.call('HGET', leases, id) == token then
    redis.call('ZREM', active, id)
    redis.call('HDEL', leases, id)
    redis.call('HDEL', jobs, id)
    redis.call('HDEL', attempts, id)
    redis.call('HDEL', state, id)
    redis.call('HDEL', errors, id)
    local group = redis.call('HGET', group_of, id)
    if group then
      redis.call('HDEL', group_of, id)
      aw_hincr(groups, 'r:' .. group, -1)
      aw_hincr(groups, 'd:' .. group, 1)
      local caps = redis.call('HMGET', groups, 'cap', 'c:' .. group)
      if caps[1] or caps[2] then woken = true end
    end
    if ttl > 0 then
      redis.call('SET', KEYS[6 + 2 * i], now .. '|' .. result, 'PX', ttl)
    end
    if type(redis.pcall('RPUSH', KEYS[7 + 2 * i], 1)) == 'table' then
      redis.call('DEL', KEYS[7 + 2 * i])
      redis.call('RPUSH', KEYS[7 + 2 * i], 1)
    end
    redis.call('PEXPIRE', KEYS[7 + 2 * i], 10000)
    if batch ~= '' then redis.call('RPUSH', KEYS[7], batch .. '|' .. id .. '|ok') end
    out[i] = 1
  else
    out[i] = 0
  end
end
if woken then
  redis.call('RPUSH', wake, 1)
  redis.call('LTRIM', wake, -64, -1)
end
return out
