-- dead_trim: forget dead letters older than the dead-letter TTL, and the oldest ones beyond
-- the count kept (run on the worker's timer, so dead letters expire without new ones).
-- KEYS[1] dead ZSET, KEYS[2] jobs HASH, KEYS[3] attempts HASH, KEYS[4] state HASH,
-- KEYS[5] errors HASH, KEYS[6] group_of HASH
-- ARGV[1] max dead jobs kept, ARGV[2] dead job max age in ms
-- returns the number of dead letters forgotten (at most 1000 by age and 1000 by count)
-- Invariant: a job leaves only the dead set, with all its data; every key is type-checked
-- before the first write (a wrong-typed key fails the call having changed nothing).
local dead, jobs, attempts, state, errors, group_of = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5], KEYS[6]
local max_dead, max_age = tonumber(ARGV[1]), tonumber(ARGV[2])
aw_types(dead, 'zset', jobs, 'hash', attempts, 'hash', state, 'hash', errors, 'hash',
  group_of, 'hash')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return aw_trim_dead(dead, {jobs, attempts, state, errors, group_of}, now, max_dead, max_age)
