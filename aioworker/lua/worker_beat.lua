-- worker_beat: publish, refresh or remove one worker's registry record.
-- KEYS[1] workers ZSET, KEYS[2] worker info HASH
-- ARGV[1] worker id, ARGV[2] ttl_ms (0 = remove the record), ARGV[3] record json
-- returns now_ms; records of other workers past their deadline are removed too
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset', KEYS[2], 'hash')
local ids, info = KEYS[1], KEYS[2]
local id, ttl = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ttl > 0 then
  redis.call('ZADD', ids, now + ttl, id)
  redis.call('HSET', info, id, ARGV[3])
else
  redis.call('ZREM', ids, id)
  redis.call('HDEL', info, id)
end
local gone = redis.call('ZRANGEBYSCORE', ids, '-inf', now, 'LIMIT', 0, 100)
for _, old in ipairs(gone) do
  redis.call('ZREM', ids, old)
  redis.call('HDEL', info, old)
end
return now
