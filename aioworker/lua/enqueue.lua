-- enqueue: add jobs to one queue, each ready now or scheduled for later; a job id that
-- is already queued, running, dead or holds a result is left alone (idempotent enqueue).
-- A unique job takes its lock in the same step, or is not created when the lock is held
-- (a debounced one replaces the holder's payload instead).  A ready job of a fair-share
-- group waits in the fair ZSET at its group's next virtual position (see fetch.lua).
-- KEYS[1] ready LIST, KEYS[2] scheduled ZSET, KEYS[3] jobs HASH, KEYS[4] wake LIST,
-- KEYS[5] attempts HASH, KEYS[6] dead ZSET, KEYS[7] fair ZSET, KEYS[8] groups HASH,
-- KEYS[9] group_of HASH, then KEYS[9+i] result STRING of the i-th job, then the unique
-- lock STRING of each job that has a unique mode, in job order
-- ARGV[1] number of jobs n; then for each job 4 values:
--   id, payload json, at_ms (absolute run time, 0 = none), delay_ms (relative to Redis TIME)
-- then the number m of jobs with options, and for each of them 6 values: the job's index
--   i (1-based), group ('' = none), unique mode ('' = none, start, success, debounce,
--   throttle), lock_ttl_ms, extend (debounce: 1 = push the pending job's run time back to
--   now + delay_ms), max_wait_ms (debounce: latest run time after the first enqueue, 0 =
--   none).  Plain jobs cost nothing more than before options existed.
-- returns a table with one entry per job: 1 = created, 0 = the id already existed, or
--   the id of the job holding its unique lock (nothing created; a debounced enqueue
--   replaced that job's payload)
--
-- A lock STRING holds "<mode>|<holder id>" with a TTL.  It binds only while its holder is
-- in the state the mode names, read here from the holder's own keys: start and debounce
-- while the holder has never been leased (no attempts entry), success while the holder
-- exists and is not dead-lettered, throttle until the TTL.  So a lock is released in the
-- same step as the holder's state changes (lease, ack, dead letter), with no extra write.
local ready, scheduled, jobs, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local attempts, dead, fair, groups, group_of = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local created = {}
local woken = 0
local lock_index = 9 + n
local options = {}
local m_at = 2 + 4 * n
for j = 1, tonumber(ARGV[m_at] or '0') do
  local b = m_at + (j - 1) * 6
  options[tonumber(ARGV[b + 1])] = b
end

-- fair groups: the next virtual position of each group touched, written back at the end
local floor, seqs = nil, {}
local function next_seq(group)
  if floor == nil then floor = tonumber(redis.call('HGET', groups, 'floor') or '0') end
  local s = seqs[group] or tonumber(redis.call('HGET', groups, 's:' .. group) or '0')
  if s < floor then s = floor end
  seqs[group] = s + 1
  return s
end

local function holds(lock)
  local value = redis.call('GET', lock)
  if not value then return nil end
  local sep = string.find(value, '|', 1, true)
  if not sep then return nil end
  local mode, holder = string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
  if mode == 'throttle' then return holder, mode end
  if redis.call('HEXISTS', jobs, holder) == 0 then return nil end
  if mode == 'success' then
    if redis.call('ZSCORE', dead, holder) then return nil end
  elseif redis.call('HEXISTS', attempts, holder) == 1 then
    return nil
  end
  return holder, mode
end

for i = 1, n do
  local base = 1 + (i - 1) * 4
  local id, payload = ARGV[base + 1], ARGV[base + 2]
  local at_ms, delay_ms = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  local group, mode, lock_ttl, extend, max_wait = '', '', 0, '0', 0
  local o = options[i]
  if o then
    group, mode, lock_ttl = ARGV[o + 2], ARGV[o + 3], tonumber(ARGV[o + 4])
    extend, max_wait = ARGV[o + 5], tonumber(ARGV[o + 6])
  end
  local lock, holder, held_mode = nil, nil, nil
  if mode ~= '' then
    lock_index = lock_index + 1
    lock = KEYS[lock_index]
  end
  if redis.call('HEXISTS', jobs, id) == 1 or redis.call('EXISTS', KEYS[9 + i]) == 1 then
    created[i] = 0
  else
    if lock then holder, held_mode = holds(lock) end
    if holder then
      if mode == 'debounce' and held_mode == 'debounce' then
        local record = redis.call('HGET', jobs, holder)
        local stamp = string.sub(record, 1, string.find(record, '|', 1, true) - 1)
        redis.call('HSET', jobs, holder, stamp .. '|' .. payload)
        local run_at = redis.call('ZSCORE', scheduled, holder)
        if run_at and extend == '1' then
          run_at = now + delay_ms
          if max_wait > 0 and run_at > tonumber(stamp) + max_wait then
            run_at = math.max(tonumber(stamp) + max_wait, now)
          end
          redis.call('ZADD', scheduled, 'XX', run_at, holder)
          redis.call('PEXPIRE', lock, run_at - now + lock_ttl)
        end
      end
      created[i] = holder
    else
      redis.call('HSET', jobs, id, now .. '|' .. payload)
      local run_at = now + delay_ms
      if at_ms > 0 then run_at = at_ms end
      if lock then
        local ttl = lock_ttl
        if mode == 'debounce' then ttl = math.max(run_at - now, 0) + lock_ttl end
        redis.call('SET', lock, mode .. '|' .. id, 'PX', math.max(ttl, 1))
      end
      if group ~= '' then
        redis.call('HSET', group_of, id, group)
        redis.call('HINCRBY', groups, 't:' .. group, 1)
      end
      if run_at > now then
        redis.call('ZADD', scheduled, run_at, id)
      elseif group ~= '' then
        redis.call('ZADD', fair, next_seq(group), id)
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
end
for group, s in pairs(seqs) do redis.call('HSET', groups, 's:' .. group, s) end
if woken > 0 then redis.call('LTRIM', wake, -64, -1) end
return created
