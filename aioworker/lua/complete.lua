-- complete: record the results of finished jobs and release their leases (batched ack).
-- KEYS[1] active ZSET, KEYS[2] jobs HASH, KEYS[3] attempts HASH, KEYS[4] leases HASH,
-- KEYS[5] state HASH, KEYS[6] errors HASH, KEYS[7] batch_outbox LIST,
-- KEYS[6+2i] result STRING and KEYS[7+2i] done LIST of the i-th job
-- ARGV[1] result_ttl_ms (0 = keep no result), then for each job 4 values:
--   id, lease token, result json, batch id ('' = not a batch child; else
--   "<batch id>|<job id>|ok" is appended to the outbox with the ack)
-- returns a table with one entry per job: 1 = recorded, 0 = the lease was lost (another
--   worker owns the job now; nothing was changed for it)
local active, jobs, attempts, leases, state, errors = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5], KEYS[6]
local ttl = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local n = (#ARGV - 1) / 4
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
    if ttl > 0 then
      redis.call('SET', KEYS[6 + 2 * i], now .. '|' .. result, 'PX', ttl)
    end
    redis.call('RPUSH', KEYS[7 + 2 * i], 1)
    redis.call('PEXPIRE', KEYS[7 + 2 * i], 10000)
    if batch ~= '' then redis.call('RPUSH', KEYS[7], batch .. '|' .. id .. '|ok') end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
