-- leader_release: step down, only if this token holds the lease (fenced).
-- KEYS[1] lease STRING
-- ARGV[1] token
-- returns 1 if released, 0 if the token did not hold the lease (nothing changed)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'string')
local lease = KEYS[1]
if redis.call('GET', lease) == ARGV[1] then
  redis.call('DEL', lease)
  return 1
end
return 0
