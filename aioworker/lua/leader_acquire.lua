-- leader_acquire: take a leadership whose lease is free (SET NX PX), counting a new term.
-- A token that already holds the lease renews it and keeps its term.
-- KEYS[1] lease STRING, KEYS[2] term STRING (counter)
-- ARGV[1] token, ARGV[2] ttl_ms
-- returns {held, term, ttl_ms}: held 1 with the token's term and ttl_ms; held 0 with the
-- current holder's term and the ms left on its lease
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'string', KEYS[2], 'string')
local lease, term = KEYS[1], KEYS[2]
local token, ttl = ARGV[1], tonumber(ARGV[2])
local holder = redis.call('GET', lease)
if holder == token then
  redis.call('PEXPIRE', lease, ttl)
  return {1, tonumber(redis.call('GET', term) or '0'), ttl}
end
if not holder then
  redis.call('SET', lease, token, 'PX', ttl)
  return {1, redis.call('INCR', term), ttl}
end
return {0, tonumber(redis.call('GET', term) or '0'), redis.call('PTTL', lease)}
