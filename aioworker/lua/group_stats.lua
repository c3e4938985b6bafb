-- group_stats: the counters of fair-share groups of one queue, read atomically.
-- KEYS[1] groups HASH
-- ARGV: group names
-- returns {cap of every group (0 = none), {enqueued, running, done, dead, own cap} for each
--   group in ARGV order (0 for what is missing)}
-- (a counter holding garbage reads as 0)
local groups = KEYS[1]
aw_types(groups, 'hash')
local out = {tonumber(redis.call('HGET', groups, 'cap')) or 0}
for _, g in ipairs(ARGV) do
  local v = redis.call('HMGET', groups, 't:' .. g, 'r:' .. g, 'd:' .. g, 'x:' .. g, 'c:' .. g)
  local row = {}
  for i = 1, 5 do row[i] = tonumber(v[i]) or 0 end
  out[#out + 1] = row
end
return out
