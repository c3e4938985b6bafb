-- group_scan: a page of the names of the groups a queue keeps counters for.
-- KEYS[1] groups HASH
-- ARGV[1] HSCAN cursor (0 to start), ARGV[2] COUNT hint
-- returns {next cursor (0 when done), {group names}}
aw_types(KEYS[1], 'hash')
local reply = redis.call('HSCAN', KEYS[1], ARGV[1], 'MATCH', 't:*', 'COUNT', ARGV[2])
local names = {}
for i = 1, #reply[2], 2 do names[#names + 1] = string.sub(reply[2][i], 3) end
return {reply[1], names}
