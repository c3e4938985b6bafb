-- limit_extend: renew the leases of Concurrent holds (their holders are alive).
-- KEYS[1] holders ZSET, KEYS[2] since HASH
-- ARGV[1] lease_ms, then the tokens
-- returns the tokens that hold no slot any more (lease lapsed and taken back, or released)
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'zset', KEYS[2], 'hash')
local holders, since = KEYS[1], KEYS[2]
local lease = tonumber(ARGV[1])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lost = {}
local renewed = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', holders, ARGV[i]) then
    redis.call('ZADD', holders, now_ms + lease, ARGV[i])
    renewed = renewed + 1
  else
    lost[#lost + 1] = ARGV[i]
  end
end
if renewed > 0 then
  if redis.call('PTTL', holders) < lease then redis.call('PEXPIRE', holders, lease) end
  if redis.call('PTTL', since) < lease then redis.call('PEXPIRE', since, lease) end
end
return lost
