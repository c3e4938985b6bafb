-- checkpoint: save a running job's state, only while the caller still holds its lease.
-- KEYS[1] leases HASH, KEYS[2] state HASH
-- ARGV[1] job id, ARGV[2] lease token, ARGV[3] state json
-- returns 1 if saved, 0 if the lease was lost (nothing changed)
-- Invariant: moves no job; both keys are type-checked before the write.
aw_types(KEYS[1], 'hash', KEYS[2], 'hash')
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
