-- batch_info: read a batch's record, and a page of its failed children.
-- KEYS[1] meta HASH, KEYS[2] failed SET
-- ARGV[1] SSCAN cursor of the failed set ('' = list none), ARGV[2] page size hint
-- returns {flat meta fields and values (empty if no such batch), next cursor, {members}}
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'hash', KEYS[2], 'set')
local meta = redis.call('HGETALL', KEYS[1])
if ARGV[1] == '' or #meta == 0 then return {meta, '0', {}} end
local page = redis.call('SSCAN', KEYS[2], ARGV[1], 'COUNT', tonumber(ARGV[2]))
return {meta, page[1], page[2]}
