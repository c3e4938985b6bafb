-- enqueue: add jobs to one queue, each ready now or scheduled for later; a job id that
-- is already queued, running, dead or holds a result is left alone (idempotent enqueue).
-- KEYS[1] ready LIST, KEYS[2] scheduled ZSET, KEYS[3] jobs HASH, KEYS[4] wake LIST,
-- KEYS[4+i] result STRING of the i-th job
-- ARGV[1] number of jobs n; then for each job 4 values:
--   id, payload json, at_ms (absolute run time, 0 = none), delay_ms (relative to Redis TIME)
-- returns a table with one entry per job: 1 = created, 0 = the id already existed
local ready, scheduled, jobs, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local created = {}
local woken = 0
for i = 1, n do
  local base = 1 + (i - 1) * 4
  local id, payload = ARGV[base + 1], ARGV[base + 2]
  local at_ms, delay_ms = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  if redis.call('HEXISTS', jobs, id) == 1 or redis.call('EXISTS', KEYS[4 + i]) == 1 then
    created[i] = 0
  else
    redis.call('HSET', jobs, id, now .. '|' .. payload)
    local run_at = now + delay_ms
    if at_ms > 0 then run_at = at_ms end
    if run_at > now then
      redis.call('ZADD', scheduled, run_at, id)
    else
      redis.call('RPUSH', ready, id)
    end
    created[i] = 1
    if woken < 16 then
      -- one token per new job (up to 16) wakes that many idle workers; delayed jobs wake
      -- a worker too, so it can shorten its sleep to the new due time
      redis.call('RPUSH', wake, 1)
      woken = woken + 1
    end
  end
end
if woken > 0 then redis.call('LTRIM', wake, -64, -1) end
return created
