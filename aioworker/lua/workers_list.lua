-- workers_list: the records of live workers (those within their deadline).
-- KEYS[1] workers ZSET, KEYS[2] worker info HASH
-- ARGV none
-- returns {now_ms, {id, deadline_ms, record json, ...}}
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset', KEYS[2], 'hash')
local ids, info = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local flat = redis.call('ZRANGEBYSCORE', ids, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 10000)
local out = {}
for i = 1, #flat, 2 do
  local record = redis.call('HGET', info, flat[i])
  if record then
    out[#out + 1] = flat[i]
    out[#out + 1] = flat[i + 1]
    out[#out + 1] = record
  end
end
return {now, out}
