-- group_cap: set or remove the concurrency cap of one fair-share group, or of every group,
-- and wake idle workers (jobs held back by the old cap may run now).
-- KEYS[1] groups HASH, KEYS[2] wake LIST
-- ARGV[1] field: 'cap' (every group) or 'c:<group>', ARGV[2] the cap (0 = remove)
-- returns 1
aw_types(KEYS[1], 'hash', KEYS[2], 'list')
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('RPUSH', KEYS[2], 1)
redis.call('LTRIM', KEYS[2], -64, -1)
return 1
