-- fetch: lease up to N ready jobs to one worker, after moving due scheduled jobs to ready
-- and returning jobs whose lease expired (their worker died) to the front of the queue.
-- KEYS[1] ready LIST, KEYS[2] scheduled ZSET, KEYS[3] active ZSET, KEYS[4] jobs HASH,
-- KEYS[5] attempts HASH, KEYS[6] leases HASH, KEYS[7] state HASH, KEYS[8] paused STRING,
-- KEYS[9] fair ZSET, KEYS[10] groups HASH, KEYS[11] group_of HASH, KEYS[12] dead ZSET,
-- KEYS[13] errors HASH, KEYS[14] batch_outbox LIST, KEYS[15] (optional) this worker's
-- halt LIST: while it holds a token the worker is stopping, so nothing is leased (the
-- fetch may run right behind a BLPOP that a halt token woke)
-- ARGV[1] max jobs to lease, ARGV[2] lease_ms, ARGV[3] lease token of this fetch
-- returns {now_ms, next_due_ms or -1, pending, {recovered ids}, {id, record, attempts, state, ...},
--   {dropped ids}, {buried ids}}
--   next_due_ms: earliest scheduled run time or lease deadline, for the idle sleep (at most
--     now + 250 while ready jobs wait for a slot of their group)
--   pending: ready + scheduled + active jobs (0 means the queue is drained)
--   dropped: ids taken from ready that have no record (nothing to run; they are gone)
--   buried: ids that cannot be leased (their attempt count is not an integer):
--     dead-lettered with the error "corrupt record: <what>" (a batch child's failure
--     goes to the batch outbox)
--
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails.  Every key is type-checked right before the
-- first write (a wrong-typed key fails the call having changed nothing), and every id
-- popped is leased, dead-lettered or, when it has no record, reported as dropped.
--
-- Fair-share groups (only while the queue holds grouped jobs, i.e. group_of exists): a
-- ready grouped job waits in the fair ZSET scored by its group's virtual position,
-- max(next position of the group, floor), where floor is the highest position served so
-- far; so each group's jobs keep their order and a group that arrives late starts level
-- with the others instead of behind their backlog.  The ready LIST (ungrouped jobs, and
-- jobs returned to the front by recovery, requeue or immediate retry) counts as one more
-- group with a position of its own.  Each lease takes the lowest position of the two, the
-- LIST on a tie.  A job whose group is at its concurrency cap (groups ``c:<g>``, else
-- ``cap``; 0 = none) is passed over, looking at most 1000 such jobs per call.
local ready, scheduled, active, jobs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local attempts, leases, state, paused = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local fair, groups, group_of = KEYS[9], KEYS[10], KEYS[11]
local dead, errors, outbox, halt = KEYS[12], KEYS[13], KEYS[14], KEYS[15]
local max_jobs, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
-- every key is type-checked once, right before the first write (a fetch that finds
-- nothing to do writes nothing and checks nothing: a failing read changes nothing either)
local checked = false
local function writable()
  if checked then return end
  aw_types(ready, 'list', scheduled, 'zset', active, 'zset', jobs, 'hash', attempts, 'hash',
    leases, 'hash', state, 'hash', fair, 'zset', groups, 'hash', group_of, 'hash', dead,
    'zset', errors, 'hash', outbox, 'list')
  checked = true
end
-- a read before any write: a wrong-typed key gets the same clear error
local function read(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err then
    writable()
    error(reply)
  end
  return reply
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local grouped = fair ~= nil and redis.call('EXISTS', group_of) == 1

local floor, plain_pos, default_cap, seqs = 0, 0, 0, {}
if grouped then
  local st = read('HMGET', groups, 'floor', 'plain', 'cap')
  -- counters holding garbage count from 0
  floor, plain_pos, default_cap = tonumber(st[1]) or 0, tonumber(st[2]) or 0,
    tonumber(st[3]) or 0
end
local function next_seq(group)
  local s = seqs[group] or tonumber(redis.call('HGET', groups, 's:' .. group)) or 0
  if s < floor then s = floor end
  seqs[group] = s + 1
  return s
end

local due = read('ZRANGEBYSCORE', scheduled, '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  writable()
  redis.call('ZREM', scheduled, unpack(due))
  local plain = due
  if grouped then
    plain = {}
    for _, id in ipairs(due) do
      local group = redis.call('HGET', group_of, id)
      if group then
        redis.call('ZADD', fair, next_seq(group), id)
      else
        plain[#plain + 1] = id
      end
    end
  end
  if #plain > 0 then redis.call('RPUSH', ready, unpack(plain)) end
end

local recovered = read('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, 1000)
if #recovered > 0 then writable() end
for i = #recovered, 1, -1 do
  local id = recovered[i]
  redis.call('ZREM', active, id)
  redis.call('HDEL', leases, id)
  redis.call('LPUSH', ready, id)
  local group = grouped and redis.call('HGET', group_of, id)
  if group then aw_hincr(groups, 'r:' .. group, -1) end
end

local out, dropped, buried = {}, {}, {}
local deadline = now + lease_ms
local running = {}
-- a job that cannot be leased becomes a dead letter with the reason, once
local function bury(id, record, why, group)
  redis.call('ZADD', dead, now, id)
  redis.call('HSET', errors, id, cjson.encode({type = 'CorruptRecord',
    message = 'corrupt record: ' .. why, traceback = ''}))
  if group then aw_hincr(groups, 'x:' .. group, 1) end
  local sep = string.find(record, '|', 1, true)
  if sep then
    local ok, body = pcall(cjson.decode, string.sub(record, sep + 1))
    if ok and type(body) == 'table' and type(body.b) == 'string' and body.b ~= '' then
      redis.call('RPUSH', outbox, body.b .. '|' .. id .. '|failed')
    end
  end
  buried[#buried + 1] = id
end
local function lease(id, group)
  local record = redis.call('HGET', jobs, id)
  if not record then
    dropped[#dropped + 1] = id
    return false
  end
  -- (the worker decodes the record itself and dead-letters one it cannot read); an
  -- attempt count that is not an integer makes HINCRBY fail without writing
  local n = redis.pcall('HINCRBY', attempts, id, 1)
  if type(n) == 'table' then
    bury(id, record, 'its attempt count is not an integer', group)
    return false
  end
  redis.call('HSET', leases, id, token)
  redis.call('ZADD', active, deadline, id)
  local st = redis.call('HGET', state, id)
  out[#out + 1] = id
  out[#out + 1] = record
  out[#out + 1] = n
  out[#out + 1] = st or ''
  if group then running[group] = aw_hincr(groups, 'r:' .. group, 1) end
  return true
end

local held_back = false
if halt and redis.call('EXISTS', halt) == 1 then max_jobs = 0 end
if max_jobs > 0 and redis.call('EXISTS', paused) == 0 then
  if not grouped then
    local ids = false
    if read('LLEN', ready) > 0 then
      writable()
      ids = redis.call('LPOP', ready, max_jobs)
    end
    if ids then
      for _, id in ipairs(ids) do lease(id, false) end
    end
  else
    writable()
    local caps = {}
    local function room(group)
      local cap = caps[group]
      if cap == nil then
        cap = tonumber(redis.call('HGET', groups, 'c:' .. group)) or default_cap
        caps[group] = cap
      end
      if cap <= 0 then return true end
      if running[group] == nil then
        running[group] = tonumber(redis.call('HGET', groups, 'r:' .. group)) or 0
      end
      return running[group] < cap
    end
    -- a window of the fair ZSET; members before rank `skipped` are jobs passed over
    -- (taken ones are removed at once, and nothing else is added during the loop)
    local window, wi, skipped, budget, group_cache = {}, 1, 0, 1000, {}
    local function fair_head()
      while true do
        if wi > #window then
          if budget <= 0 then return nil end
          window = redis.call('ZRANGE', fair, skipped, skipped + 99, 'WITHSCORES')
          wi = 1
          if #window == 0 then return nil end
        end
        local id = window[wi]
        local group = group_cache[id]
        if group == nil then
          group = redis.call('HGET', group_of, id)
          group_cache[id] = group
        end
        if group and not room(group) then
          skipped, budget, wi, held_back = skipped + 1, budget - 1, wi + 2, true
        else
          return id, tonumber(window[wi + 1]), group
        end
      end
    end
    local plain_len = redis.call('LLEN', ready)
    local parked = {}
    local taken = 0
    while taken < max_jobs do
      local fid, fscore, fgroup = fair_head()
      local pos = math.max(plain_pos, floor)
      if plain_len > 0 and (fid == nil or pos <= fscore) then
        local id = redis.call('LPOP', ready)
        plain_len = plain_len - 1
        local group = redis.call('HGET', group_of, id)
        if group and not room(group) then
          parked[#parked + 1] = id
          held_back = true
        elseif lease(id, group) then
          taken = taken + 1
          plain_pos, floor = pos + 1, pos
        end
      elseif fid then
        redis.call('ZREM', fair, fid)
        wi = wi + 2
        if lease(fid, fgroup) then taken = taken + 1 end
        if fscore > floor then floor = fscore end
      else
        break
      end
    end
    -- grouped jobs from the LIST whose group is full wait in the fair ZSET, at the front
    for _, id in ipairs(parked) do redis.call('ZADD', fair, floor, id) end
  end
end
if grouped then
  writable()
  redis.call('HSET', groups, 'floor', floor, 'plain', plain_pos)
  for group, s in pairs(seqs) do redis.call('HSET', groups, 's:' .. group, s) end
end

local next_due = -1
local first = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')
if first[2] then next_due = tonumber(first[2]) end
local lease_first = redis.call('ZRANGE', active, 0, 0, 'WITHSCORES')
if lease_first[2] and (next_due < 0 or tonumber(lease_first[2]) < next_due) then
  next_due = tonumber(lease_first[2])
end
if held_back and (next_due < 0 or next_due > now + 250) then next_due = now + 250 end
local pending = redis.call('LLEN', ready) + redis.call('ZCARD', scheduled)
  + redis.call('ZCARD', active)
if fair then pending = pending + read('ZCARD', fair) end
return {now, next_due, pending, recovered, out, dropped, buried}
