-- leader_renew: extend the lease, only while this token still holds it (fenced).
-- A lease that expired is not taken back here: its holder may have been replaced.
-- KEYS[1] lease STRING
-- ARGV[1] token, ARGV[2] ttl_ms
-- returns 1 if renewed, 0 if the token no longer holds the lease (nothing changed)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'string')
local lease = KEYS[1]
if redis.call('GET', lease) == ARGV[1] then
  redis.call('PEXPIRE', lease, tonumber(ARGV[2]))
  return 1
end
return 0
