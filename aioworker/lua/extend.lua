-- extend: renew the leases of the jobs a live worker is running (its heartbeat).
-- KEYS[1] active ZSET, KEYS[2] leases HASH
-- ARGV[1] lease_ms, then pairs of job id and lease token
-- returns the ids whose lease this worker no longer holds
-- Invariant: moves no job (ZADD XX only renews); both keys are type-checked first.
local active, leases = KEYS[1], KEYS[2]
aw_types(active, 'zset', leases, 'hash')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', leases, id) == ARGV[i + 1] then
    redis.call('ZADD', active, 'XX', deadline, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
