-- unique_run: take the while_running lock of a job about to run.  The lock binds only
-- while its holder has a live lease (is running on a live worker), so the lock of a job
-- that finished without releasing it, or whose worker died, is free to take.
-- KEYS[1] unique_run STRING, KEYS[2] active ZSET
-- ARGV[1] job id, ARGV[2] lock ttl_ms
-- returns 0 if this job holds the lock now, else ms until the holder's lease deadline
local lock, active = KEYS[1], KEYS[2]
aw_types(active, 'zset')
-- a lock key of another type is no lock: SET below replaces it
local holder = redis.call('TYPE', lock)['ok'] == 'string' and redis.call('GET', lock)
if holder and holder ~= ARGV[1] then
  local deadline = redis.call('ZSCORE', active, holder)
  if deadline then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if tonumber(deadline) > now then return math.max(tonumber(deadline) - now, 1) end
  end
end
redis.call('SET', lock, ARGV[1], 'PX', ARGV[2])
return 0
