-- batch_index: the list of batches of an application, newest first.
-- KEYS[1] batches ZSET
-- ARGV[1] mode: 'add', 'list' or 'remove'
--   add:    ARGV[2] batch id, ARGV[3] max_age_ms (older entries are dropped); returns 1
--   list:   ARGV[2] offset, ARGV[3] count; returns {id, created_ms, ...} newest first
--   remove: ARGV[2..] batch ids; returns how many were removed
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset')
local index = KEYS[1]
local mode = ARGV[1]
if mode == 'add' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', index, 'NX', now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now - tonumber(ARGV[3]))
  return 1
elseif mode == 'list' then
  local first = tonumber(ARGV[2])
  return redis.call('ZREVRANGE', index, first, first + tonumber(ARGV[3]) - 1, 'WITHSCORES')
end
local removed = 0
for i = 2, #ARGV do removed = removed + redis.call('ZREM', index, ARGV[i]) end
return removed
