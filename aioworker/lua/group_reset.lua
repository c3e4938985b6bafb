-- group_reset: forget a fair-share group's completed and dead counts; a group left with
-- nothing enqueued (nothing waiting or running) loses all its counters and its position.
-- KEYS[1] groups HASH
-- ARGV[1] group name
-- returns the group's remaining enqueued count (waiting + running)
local groups, g = KEYS[1], ARGV[1]
aw_types(groups, 'hash')
local v = redis.call('HMGET', groups, 't:' .. g, 'r:' .. g, 'd:' .. g, 'x:' .. g)
-- counters holding garbage count as 0
local left = (tonumber(v[1]) or 0) - (tonumber(v[3]) or 0) - (tonumber(v[4]) or 0)
if left <= 0 and (tonumber(v[2]) or 0) <= 0 then
  redis.call('HDEL', groups, 't:' .. g, 'r:' .. g, 'd:' .. g, 'x:' .. g, 's:' .. g)
  return 0
end
redis.call('HSET', groups, 't:' .. g, left)
redis.call('HDEL', groups, 'd:' .. g, 'x:' .. g)
return left
