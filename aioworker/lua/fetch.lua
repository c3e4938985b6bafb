-- fetch: lease up to N ready jobs to one worker, after moving due scheduled jobs to ready
-- and returning jobs whose lease expired (their worker died) to the front of the queue.
-- KEYS[1] ready LIST, KEYS[2] scheduled ZSET, KEYS[3] active ZSET, KEYS[4] jobs HASH,
-- KEYS[5] attempts HASH, KEYS[6] leases HASH, KEYS[7] state HASH, KEYS[8] paused STRING
-- ARGV[1] max jobs to lease, ARGV[2] lease_ms, ARGV[3] lease token of this fetch
-- returns {now_ms, next_due_ms or -1, pending, {recovered ids}, {id, record, attempts, state, ...}}
--   next_due_ms: earliest scheduled run time or lease deadline, for the idle sleep
--   pending: ready + scheduled + active jobs (0 means the queue is drained)
local ready, scheduled, active, jobs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local attempts, leases, state, paused = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local max_jobs, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  redis.call('RPUSH', ready, unpack(due))
  redis.call('ZREM', scheduled, unpack(due))
end

local recovered = redis.call('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, 1000)
for i = #recovered, 1, -1 do
  local id = recovered[i]
  redis.call('ZREM', active, id)
  redis.call('HDEL', leases, id)
  redis.call('LPUSH', ready, id)
end

local out = {}
if max_jobs > 0 and redis.call('EXISTS', paused) == 0 then
  local ids = redis.call('LPOP', ready, max_jobs)
  if ids then
    local deadline = now + lease_ms
    for _, id in ipairs(ids) do
      local record = redis.call('HGET', jobs, id)
      if record then
        local n = redis.call('HINCRBY', attempts, id, 1)
        redis.call('HSET', leases, id, token)
        redis.call('ZADD', active, deadline, id)
        local st = redis.call('HGET', state, id)
        out[#out + 1] = id
        out[#out + 1] = record
        out[#out + 1] = n
        out[#out + 1] = st or ''
      end
    end
  end
end

local next_due = -1
local first = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')
if first[2] then next_due = tonumber(first[2]) end
local lease = redis.call('ZRANGE', active, 0, 0, 'WITHSCORES')
if lease[2] and (next_due < 0 or tonumber(lease[2]) < next_due) then
  next_due = tonumber(lease[2])
end
local pending = redis.call('LLEN', ready) + redis.call('ZCARD', scheduled)
  + redis.call('ZCARD', active)
return {now, next_due, pending, recovered, out}
