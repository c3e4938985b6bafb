-- batch_add: check, then register, children of a batch.  A producer checks, enqueues the
-- children, then registers them: a child that finished before it was registered left an
-- early mark (S, F|<queue>, X) that registering counts, and a crash between enqueue and
-- registration leaves children that run uncounted instead of a batch waiting for ever.
-- A sealed batch takes new children only from a job of the batch that has not finished
-- (a pending child, or one whose own registration is still on its way); ids already
-- registered are always accepted and change nothing.
-- KEYS[1] meta HASH, KEYS[2] children HASH, KEYS[3] failed SET, KEYS[4] done LIST
-- ARGV[1] mode: 'check' (change nothing) or 'add', ARGV[2] id of the job adding them
-- ('' = from outside the batch), ARGV[3..] child job ids
-- returns the number of children new to the batch, or -1 no such batch, -2 the batch is
--   cancelled, -3 the batch is sealed (nothing changed in the error cases)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'hash', KEYS[2], 'hash', KEYS[3], 'set', KEYS[4], 'list')
local meta, children, failed_set = KEYS[1], KEYS[2], KEYS[3]
local mode, caller = ARGV[1], ARGV[2]
local state = redis.call('HMGET', meta, 'created', 'cancelled', 'sealed', 'ttl')
if not state[1] then return -1 end
if state[2] == '1' then return -2 end
local new = {}
for i = 3, #ARGV do
  local st = redis.call('HGET', children, ARGV[i])
  if not st or string.match(st, '^[SFX]') then new[#new + 1] = ARGV[i] end
end
if #new == 0 then return 0 end
if state[3] == '1' then
  local by = caller ~= '' and redis.call('HGET', children, caller)
  if caller == '' or (by and by ~= 'p') then return -3 end
end
if mode == 'check' then return #new end
local added, pending, succeeded, failed, skipped = 0, 0, 0, 0, 0
for _, id in ipairs(new) do
  local st = redis.call('HGET', children, id)
  if not st then
    pending = pending + 1
    redis.call('HSET', children, id, 'p')
  elseif st == 'S' then
    succeeded = succeeded + 1
    redis.call('HSET', children, id, 's')
  elseif st == 'X' then
    skipped = skipped + 1
    redis.call('HSET', children, id, 'x')
  elseif string.sub(st, 1, 1) == 'F' then
    failed = failed + 1
    redis.call('HSET', children, id, 'f')
    redis.call('SADD', failed_set, string.sub(st, 3) .. '|' .. id)
  end
  -- an id given twice in one call is registered once: the second sees 'p'/'s'/'f'/'x'
  if not st or string.match(st, '^[SFX]') then added = added + 1 end
end
redis.call('HINCRBY', meta, 'total', added)
redis.call('HINCRBY', meta, 'pending', pending)
redis.call('HINCRBY', meta, 'succeeded', succeeded)
redis.call('HINCRBY', meta, 'failed', failed)
redis.call('HINCRBY', meta, 'skipped', skipped)
local ttl = tonumber(state[4])
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttl) end
return added
