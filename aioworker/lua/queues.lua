-- queues: register queue names, or list them.
-- KEYS[1] queues SET
-- ARGV: names to add (none = list)
-- returns the number of names newly added when names are given, else every name
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'set')
if #ARGV > 0 then return redis.call('SADD', KEYS[1], unpack(ARGV)) end
return redis.call('SMEMBERS', KEYS[1])
