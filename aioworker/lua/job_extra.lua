-- job_extra: who runs a job and whether its cancellation was asked for.
-- KEYS[1] leases HASH, KEYS[2] cancel HASH
-- ARGV[1] job id
-- returns {lease token or '', cancel requested_ms or ''}
aw_types(KEYS[1], 'hash', KEYS[2], 'hash')
return {redis.call('HGET', KEYS[1], ARGV[1]) or '', redis.call('HGET', KEYS[2], ARGV[1]) or ''}
