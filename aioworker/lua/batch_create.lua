-- batch_create: create a batch's record once (creating an existing id changes nothing).
-- KEYS[1] meta HASH, KEYS[2] children HASH, KEYS[3] failed SET, KEYS[4] done LIST
-- ARGV[1] description, ARGV[2] ttl_ms (keys expire this long after the last activity),
-- ARGV[3] on_complete callback spec json ('' = none), ARGV[4] on_success spec json ('' = none)
-- returns {1 if created now else 0, created_ms}
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'hash', KEYS[2], 'hash', KEYS[3], 'set', KEYS[4], 'list')
local meta = KEYS[1]
local ttl = tonumber(ARGV[2])
local created = redis.call('HGET', meta, 'created')
if created then
  redis.call('PEXPIRE', meta, tonumber(redis.call('HGET', meta, 'ttl')))
  return {0, tonumber(created)}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', meta, 'created', now, 'desc', ARGV[1], 'ttl', ttl, 'sealed', 0,
  'cancelled', 0, 'total', 0, 'pending', 0, 'succeeded', 0, 'failed', 0, 'skipped', 0,
  'done', 0)
if ARGV[3] ~= '' then redis.call('HSET', meta, 'cb:complete', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', meta, 'cb:success', ARGV[4]) end
redis.call('PEXPIRE', meta, ttl)
return {1, now}
