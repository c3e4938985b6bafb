-- purge: delete dead-lettered jobs for good, with their data and their recorded failure.
-- KEYS[1] dead ZSET, KEYS[2] jobs HASH, KEYS[3] attempts HASH, KEYS[4] state HASH,
-- KEYS[5] errors HASH, then KEYS[4+2i] result STRING and KEYS[5+2i] done LIST of the
-- i-th job, then group_of HASH (the last key: a purged job of a fair-share group is
-- forgotten there; its group still counts it as dead)
-- ARGV: the job ids
-- returns the number of jobs deleted (ids not in the dead-letter set are skipped)
local dead, jobs, attempts, state, errors = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group_of = KEYS[6 + 2 * #ARGV]
-- Invariant: a job leaves only the dead set, with all its data; every key written is
-- type-checked first (a wrong-typed key fails the call having changed nothing).
aw_types(dead, 'zset', jobs, 'hash', attempts, 'hash', state, 'hash', errors, 'hash',
  group_of, 'hash')
local n = 0
for i, id in ipairs(ARGV) do
  if redis.call('ZREM', dead, id) == 1 then
    redis.call('HDEL', jobs, id)
    redis.call('HDEL', attempts, id)
    redis.call('HDEL', state, id)
    redis.call('HDEL', errors, id)
    if group_of then redis.call('HDEL', group_of, id) end
    redis.call('DEL', KEYS[4 + 2 * i], KEYS[5 + 2 * i])
    n = n + 1
  end
end
return n
