-- revive: move dead-lettered jobs back to the queue with a fresh attempt count.
-- KEYS[1] dead ZSET, KEYS[2] ready LIST, KEYS[3] jobs HASH, KEYS[4] attempts HASH,
-- KEYS[5] errors HASH, KEYS[6] wake LIST, then KEYS[5+2i] result STRING and KEYS[6+2i]
-- done LIST of the i-th job (both dropped: a stale done marker would wake result waiters),
-- then group_of HASH and groups HASH (the last two keys)
-- ARGV: the job ids
-- returns the number of jobs moved (ids not in the dead-letter set are skipped)
-- Invariant: every job id is in exactly one of ready, fair, scheduled, active or dead at
-- the end of the script, whatever fails: every key written is type-checked first (a
-- wrong-typed key fails the call with WRONGTYPE having changed nothing).
local dead, ready, jobs, attempts, errors, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5], KEYS[6]
local group_of, groups = KEYS[7 + 2 * #ARGV], KEYS[8 + 2 * #ARGV]
aw_types(dead, 'zset', ready, 'list', jobs, 'hash', attempts, 'hash', errors, 'hash',
  wake, 'list', group_of, 'hash', groups, 'hash')
local moved = 0
for i, id in ipairs(ARGV) do
  if redis.call('ZREM', dead, id) == 1 and redis.call('HEXISTS', jobs, id) == 1 then
    redis.call('HDEL', attempts, id)
    redis.call('HDEL', errors, id)
    redis.call('DEL', KEYS[5 + 2 * i], KEYS[6 + 2 * i])
    redis.call('RPUSH', ready, id)
    -- a revived job of a fair-share group counts as waiting again, not dead
    local group = groups and redis.call('HGET', group_of, id)
    if group then aw_hincr(groups, 'x:' .. group, -1) end
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('RPUSH', wake, 1)
  redis.call('LTRIM', wake, -64, -1)
end
return moved
