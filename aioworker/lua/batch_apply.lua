-- batch_apply: apply events to a batch, then reserve the callbacks that are due for the
-- caller to enqueue.  Every event is idempotent, so replaying an outbox entry is harmless.
-- KEYS[1] meta HASH, KEYS[2] children HASH, KEYS[3] failed SET, KEYS[4] done LIST
-- ARGV[1] claim_ms: how long a reserved callback is the caller's alone to enqueue
-- ARGV[2..] triples (event, job id, queue); events:
--   ok      a child completed: pending -> succeeded, or failed -> succeeded (re-run
--           after it died); a child that succeeded or was skipped stays so
--   failed  a child was dead-lettered: pending -> failed
--   skipped an operator cancelled a child: pending -> skipped
--   skip    a child is about to start: if the batch is cancelled it is marked skipped
--           (pending or failed -> skipped) and the event's result is 1 (do not run it)
--   check   result 1 if the batch is cancelled (changes nothing)
--   A child not registered yet (its producer enqueues first, then registers) gets an
--   early mark instead, counted when batch_add registers it: S, F|<queue> or X.
--   seal    no more children come from outside the batch
--   cancel  the batch is cancelled: children that have not started will be skipped, and
--           callbacks not yet due never fire; result 1 if it was not cancelled before
--   sent    the callback named by the job id field (complete|success) was enqueued
-- returns {{result per event: 1 or 0}, {name, spec json, snapshot, ...}}: the callbacks
--   due and not yet enqueued that are now reserved for the caller (snapshot:
--   "total|succeeded|failed|skipped|finished_ms" when the callback became due)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'hash', KEYS[2], 'hash', KEYS[3], 'set', KEYS[4], 'list')
local meta, children, failed_set, done = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', meta) == 0 then return {{}, {}} end
local claim_ms = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', meta, 'sealed', 'cancelled', 'pending', 'succeeded', 'failed',
  'skipped', 'total', 'done', 'ttl')
local sealed, cancelled = tonumber(f[1]), tonumber(f[2])
local pending, succeeded, failed = tonumber(f[3]), tonumber(f[4]), tonumber(f[5])
local skipped, total, finished, ttl = tonumber(f[6]), tonumber(f[7]), tonumber(f[8]), tonumber(f[9])
local results = {}
local n = 0
if cancelled == 0 then
  -- the check every child of a batch makes before it starts: answer it without writing
  local only_skips = true
  for i = 2, #ARGV, 3 do
    if ARGV[i] ~= 'skip' and ARGV[i] ~= 'check' then only_skips = false break end
    results[#results + 1] = 0
  end
  if only_skips then return {results, {}} end
  results = {}
end
for i = 2, #ARGV, 3 do
  local event, id, queue = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local r = 0
  if event == 'ok' or event == 'failed' or event == 'skip' or event == 'skipped' then
    local st = redis.call('HGET', children, id)
    if not st or string.match(st, '^[SF]') then
      -- not registered yet: leave an early mark (a later ok wins over an early failure)
      if event == 'skip' then
        if cancelled == 1 then
          r = 1
          if st ~= 'S' then redis.call('HSET', children, id, 'X') end
        end
      elseif event == 'ok' then
        if st ~= 'S' then redis.call('HSET', children, id, 'S') end
      elseif event == 'skipped' then
        if not st then redis.call('HSET', children, id, 'X') end
      elseif not st then
        redis.call('HSET', children, id, 'F|' .. queue)
      end
    elseif event == 'skip' then
      if cancelled == 1 then
        r = 1
        if st == 'p' or st == 'f' then
          if st == 'p' then pending = pending - 1 else
            failed = failed - 1
            redis.call('SREM', failed_set, queue .. '|' .. id)
          end
          skipped = skipped + 1
          redis.call('HSET', children, id, 'x')
        end
      end
    elseif st == 'p' and event == 'skipped' then
      r = 1
      pending = pending - 1
      skipped = skipped + 1
      redis.call('HSET', children, id, 'x')
    elseif st == 'p' then
      r = 1
      pending = pending - 1
      if event == 'ok' then
        succeeded = succeeded + 1
        redis.call('HSET', children, id, 's')
      else
        failed = failed + 1
        redis.call('HSET', children, id, 'f')
        redis.call('SADD', failed_set, queue .. '|' .. id)
      end
    elseif st == 'f' and event == 'ok' then
      r = 1
      failed = failed - 1
      succeeded = succeeded + 1
      redis.call('HSET', children, id, 's')
      redis.call('SREM', failed_set, queue .. '|' .. id)
    end
  elseif event == 'check' then
    r = cancelled
  elseif event == 'seal' then
    if sealed == 0 then r = 1 end
    sealed = 1
  elseif event == 'cancel' then
    if cancelled == 0 then
      r = 1
      cancelled = 1
      redis.call('HSET', meta, 'cancelled_at', now)
      redis.call('RPUSH', done, 1)  -- waiters return at once for a cancelled batch
    end
  elseif event == 'sent' then
    if not redis.call('HGET', meta, 'sent:' .. id) then
      r = 1
      redis.call('HSET', meta, 'sent:' .. id, now)
    end
  end
  n = n + 1
  results[n] = r
end

if sealed == 1 and pending == 0 then
  if finished == 0 then
    finished = now
    redis.call('RPUSH', done, 1)
  end
  if cancelled == 0 then
    local snapshot = total .. '|' .. succeeded .. '|' .. failed .. '|' .. skipped .. '|' .. now
    local function due(name)
      if redis.call('HEXISTS', meta, 'cb:' .. name) == 1
        and redis.call('HEXISTS', meta, 'due:' .. name) == 0 then
        redis.call('HSET', meta, 'due:' .. name, snapshot)
      end
    end
    due('complete')
    if failed == 0 and skipped == 0 then due('success') end
  end
end
redis.call('HSET', meta, 'sealed', sealed, 'cancelled', cancelled, 'pending', pending,
  'succeeded', succeeded, 'failed', failed, 'skipped', skipped, 'done', finished)

local reserved = {}
for _, name in ipairs({'complete', 'success'}) do
  local snap = redis.call('HGET', meta, 'due:' .. name)
  if snap and not redis.call('HGET', meta, 'sent:' .. name) then
    local claim = tonumber(redis.call('HGET', meta, 'claim:' .. name) or '0')
    if claim <= now then
      redis.call('HSET', meta, 'claim:' .. name, now + claim_ms)
      reserved[#reserved + 1] = name
      reserved[#reserved + 1] = redis.call('HGET', meta, 'cb:' .. name)
      reserved[#reserved + 1] = snap
    end
  end
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttl) end
return {results, reserved}
