-- enqueue: add jobs to one queue, each ready now or scheduled for later; a job id that
-- is already queued, running, dead or holds a result is left alone (idempotent enqueue).
-- A unique job takes its lock in the same step, or is not created when the lock is held
-- (a debounced one replaces the holder's payload instead).  A ready job of a fair-share
-- group waits in the fair ZSET at its group's next virtual position (see fetch.lua).
-- KEYS[1] ready LIST, KEYS[2] scheduled ZSET, KEYS[3] jobs HASH, KEYS[4] wake LIST,
-- KEYS[5] attempts HASH, KEYS[6] dead ZSET, KEYS[7] fair ZSET, KEYS[8] groups HASH,
-- KEYS[9] group_of HASH, then the result STRING of each chosen id (below), then the
-- unique lock STRING of each job with a unique mode, in job order
-- ARGV[1] the job ids and ARGV[2] the payloads (json), each concatenated in job order
-- ARGV[3] five numbers per job, "<id bytes> <payload bytes> <check> <at_ms> <delay_ms> ":
--   check 1 = the id was chosen, so a job may have it: look for it first; 0 = the id was
--   generated for this enqueue, so no job can have it; at_ms the absolute run time (0 =
--   none, wins over delay_ms); delay_ms relative to Redis TIME
-- ARGV[4] the number c of jobs with check 1, then their ids in job order
-- ARGV[5 + c] the number m of jobs with a group or unique mode, then for each of them 6
--   values: the job's index i (1-based), group ('' = none), unique mode ('' = none,
--   start, success, debounce, throttle), lock_ttl_ms, extend (debounce: 1 = push the
--   pending job's run time back to now + delay_ms), max_wait_ms (debounce: latest run
--   time after the first enqueue, 0 = none)
-- returns {flags, holder...}: flags has one character per job, '1' = created, '0' = the
--   id already existed, 'h' = not created, held by the job whose id is the next holder
--   in the reply (a debounced enqueue replaced that job's payload)
--
-- The chosen ids are looked for all at once, before any write.  Jobs without a group or
-- unique mode are written in bulk: one HSET, RPUSH and ZADD per up to 1000 jobs.  A job
-- with a group or unique mode first writes the bulk buffered so far, so it sees every
-- earlier job of the call and keeps the ready order.
--
-- A lock STRING holds "<mode>|<holder id>" with a TTL.  It binds only while its holder is
-- in the state the mode names, read here from the holder's own keys: start and debounce
-- while the holder has never been leased (no attempts entry), success while the holder
-- exists and is not dead-lettered, throttle until the TTL.  So a lock is released in the
-- same step as the holder's state changes (lease, ack, dead letter), with no extra write.
--
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails: every key written is type-checked first (a
-- wrong-typed key fails the call with WRONGTYPE having changed nothing).
local ready, scheduled, jobs, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local attempts, dead, fair, groups, group_of = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stamp_now = now .. '|'
local id_blob, payload_blob = ARGV[1], ARGV[2]
local c = tonumber(ARGV[4])
local m_at = 5 + c
local options = {}
for j = 1, tonumber(ARGV[m_at]) do
  local b = m_at + (j - 1) * 6
  options[tonumber(ARGV[b + 1])] = b
end
local lock_index = 9 + c
aw_types(ready, 'list', scheduled, 'zset', jobs, 'hash', wake, 'list', attempts, 'hash',
  dead, 'zset', fair, 'zset', groups, 'hash', group_of, 'hash')
for j = 10 + c, #KEYS do aw_types(KEYS[j], 'string') end

-- taken: the chosen ids a job or a result has, or a job of this call (kept up to date);
-- one HMGET and one EXISTS instead of two commands per job
local taken = {}
if c > 0 then
  local found = redis.call('HMGET', jobs, unpack(ARGV, 5, 4 + c))
  for j = 1, c do
    if found[j] then taken[ARGV[4 + j]] = true end
  end
  if redis.call('EXISTS', unpack(KEYS, 10, 9 + c)) > 0 then
    for j = 1, c do
      if redis.call('EXISTS', KEYS[9 + j]) == 1 then taken[ARGV[4 + j]] = true end
    end
  end
end

-- the bulk: jobs HASH fields and values, ready ids, scheduled score/id pairs
local BULK = 1000 -- jobs per bulk write (unpack() stays far below Lua's stack limit)
local fields, nf, ready_ids, nr, due, nd = {}, 0, {}, 0, {}, 0
local function flush()
  if nf == 0 then return end
  redis.call('HSET', jobs, unpack(fields, 1, nf))
  if nr > 0 then redis.call('RPUSH', ready, unpack(ready_ids, 1, nr)) end
  if nd > 0 then redis.call('ZADD', scheduled, unpack(due, 1, nd)) end
  nf, nr, nd = 0, 0, 0
end

-- fair groups: the next virtual position of each group touched, written back at the end
local floor, seqs = nil, {}
local function next_seq(group)
  if floor == nil then floor = tonumber(redis.call('HGET', groups, 'floor')) or 0 end
  local s = seqs[group] or tonumber(redis.call('HGET', groups, 's:' .. group)) or 0
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

-- a job with a group or unique mode, written at once (after its id's check, done by the
-- caller); returns its flag and the holder of its lock
local function enqueue_one(id, payload, run_at, delay_ms, o)
  local group, mode, lock_ttl = ARGV[o + 2], ARGV[o + 3], tonumber(ARGV[o + 4])
  local extend, max_wait = ARGV[o + 5], tonumber(ARGV[o + 6])
  local lock, holder, held_mode = nil, nil, nil
  if mode ~= '' then
    lock_index = lock_index + 1
    lock = KEYS[lock_index]
    holder, held_mode = holds(lock)
  end
  if holder then
    if mode == 'debounce' and held_mode == 'debounce' then
      local record = redis.call('HGET', jobs, holder)
      -- a record without a valid stamp gets this enqueue's time
      local stamp = string.match(record, '^(%d+)|') or tostring(now)
      redis.call('HSET', jobs, holder, stamp .. '|' .. payload)
      local pending_at = redis.call('ZSCORE', scheduled, holder)
      if pending_at and extend == '1' then
        pending_at = now + delay_ms
        if max_wait > 0 and pending_at > tonumber(stamp) + max_wait then
          pending_at = math.max(tonumber(stamp) + max_wait, now)
        end
        redis.call('ZADD', scheduled, 'XX', pending_at, holder)
        redis.call('PEXPIRE', lock, pending_at - now + lock_ttl)
      end
    end
    return 'h', holder
  end
  redis.call('HSET', jobs, id, stamp_now .. payload)
  if lock then
    local ttl = lock_ttl
    if mode == 'debounce' then ttl = math.max(run_at - now, 0) + lock_ttl end
    redis.call('SET', lock, mode .. '|' .. id, 'PX', math.max(ttl, 1))
  end
  if group ~= '' then
    redis.call('HSET', group_of, id, group)
    aw_hincr(groups, 't:' .. group, 1)
  end
  if run_at > now then
    redis.call('ZADD', scheduled, run_at, id)
  elseif group ~= '' then
    redis.call('ZADD', fair, next_seq(group), id)
  else
    redis.call('RPUSH', ready, id)
  end
  return '1'
end

local flags, reply, created = {}, {''}, 0
local i, id_at, payload_at = 0, 1, 1
for id_len, payload_len, check, at_ms, delay_ms in
    string.gmatch(ARGV[3], '(%d+) (%d+) (%d) (%d+) (%d+)') do
  i = i + 1
  local id = string.sub(id_blob, id_at, id_at + id_len - 1)
  local payload = string.sub(payload_blob, payload_at, payload_at + payload_len - 1)
  id_at, payload_at = id_at + id_len, payload_at + payload_len
  delay_ms = tonumber(delay_ms)
  local run_at = now + delay_ms
  if at_ms ~= '0' then run_at = tonumber(at_ms) end
  local o = options[i]
  local flag = '1'
  if check == '1' and taken[id] then flag = '0' end
  if flag == '0' then
    if o and ARGV[o + 3] ~= '' then lock_index = lock_index + 1 end -- its unused lock
  elseif o then
    flush()
    local holder
    flag, holder = enqueue_one(id, payload, run_at, delay_ms, o)
    if holder then reply[#reply + 1] = holder end
  else
    fields[nf + 1], fields[nf + 2], nf = id, stamp_now .. payload, nf + 2
    if run_at > now then
      due[nd + 1], due[nd + 2], nd = run_at, id, nd + 2
    else
      ready_ids[nr + 1], nr = id, nr + 1
    end
    if nf == 2 * BULK then flush() end
  end
  flags[i] = flag
  if flag == '1' then
    created = created + 1
    if check == '1' then taken[id] = true end
  end
end
flush()
for group, s in pairs(seqs) do redis.call('HSET', groups, 's:' .. group, s) end
if created > 0 then
  -- one token per new job (up to 16) wakes that many idle workers; delayed jobs wake
  -- a worker too, so it can shorten its sleep to the new due time
  local tokens = {}
  for j = 1, math.min(created, 16) do tokens[j] = 1 end
  -- at most 64 tokens wait (trimmed only when over, so most calls write once)
  if redis.call('RPUSH', wake, unpack(tokens)) > 64 then redis.call('LTRIM', wake, -64, -1) end
end
reply[1] = table.concat(flags)
return reply
