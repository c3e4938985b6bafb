-- buried: record the outcome of jobs that fetch dead-lettered because their record is
-- corrupt ("buried" in fetch's reply), as dead.lua does for a leased job: the result
-- record (status and job.result() read it) and the done marker that wakes job.result().
-- fetch cannot write these itself: their keys are per job and every key must be in KEYS[].
-- KEYS[1] dead ZSET, KEYS[2] errors HASH, then per job its result STRING and done LIST
-- ARGV[1] result_ttl_ms, ARGV[2..] the job ids, in the order of their keys
-- returns how many were recorded; a job no longer in dead (revived since) is left alone
-- Writes only result and done keys, each type-checked before any write (a wrong-typed
-- key fails the call having changed nothing); no job moves between lists.
local dead, errors = KEYS[1], KEYS[2]
local result_ttl = tonumber(ARGV[1])
aw_types(dead, 'zset', errors, 'hash')
for i = 2, #ARGV do
  aw_types(KEYS[2 * i - 1], 'string', KEYS[2 * i], 'list')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local recorded = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', dead, id) then
    local err = redis.call('HGET', errors, id)
    if not err or not pcall(cjson.decode, err) then
      err = cjson.encode({type = 'CorruptRecord', message = 'corrupt record', traceback = ''})
    end
    if result_ttl > 0 then
      redis.call('SET', KEYS[2 * i - 1], now .. '|{"s":"dead","e":' .. err .. '}', 'PX', result_ttl)
    end
    redis.call('RPUSH', KEYS[2 * i], 1)
    redis.call('PEXPIRE', KEYS[2 * i], 10000)
    recorded = recorded + 1
  end
end
return recorded
