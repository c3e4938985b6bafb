-- _guards: not a script of its own; scripts.py puts it in front of every script, so a
-- script can refuse before its first write instead of failing half-way (Redis keeps the
-- writes a script made before an error, so a half-run script could strand a job).
-- aw_types(key, type, key, type, ...): each key is of its type or absent (nil keys are
--   skipped), else the script fails with
--   "WRONGTYPE aioworker: key <k> is a <t>, expected <u>" having written nothing
-- aw_int(v): v as an integer HINCRBY accepts, else nil
-- aw_hincr(key, field, by): HINCRBY of a counter, resetting one that holds garbage
-- aw_trim_dead(dead, hashes, now, max_dead, max_age): forget dead letters older than
--   max_age ms and the oldest beyond max_dead (at most 1000 of each per call), with their
--   fields in each of hashes; returns how many were forgotten
local function aw_types(...)
  local spec, n = {...}, select('#', ...)
  for i = 1, n, 2 do
    local key, want = spec[i], spec[i + 1]
    if key then
      local got = redis.call('TYPE', key)['ok']
      if got ~= 'none' and got ~= want then
        local msg = 'WRONGTYPE aioworker: key ' .. key .. ' is a ' .. got .. ', expected '
          .. want
        -- Redis 6.2's error handler cannot take a table (it concatenates what it is
        -- given): there the reply reads "... @user_script:N: -WRONGTYPE aioworker: ..."
        if redis.REDIS_VERSION_NUM then error({err = msg}) else error('-' .. msg, 0) end
      end
    end
  end
end
local function aw_int(v)
  if type(v) ~= 'string' or #v > 18 or not string.find(v, '^%-?%d+$') then return nil end
  return tonumber(v)
end
local function aw_hincr(key, field, by)
  local v = redis.call('HGET', key, field)
  if v and not aw_int(v) then
    redis.call('HSET', key, field, by)
    return by
  end
  return redis.call('HINCRBY', key, field, by)
end
local function aw_trim_dead(dead, hashes, now, max_dead, max_age)
  local forgotten = 0
  local function forget(ids)
    for _, old in ipairs(ids) do
      redis.call('ZREM', dead, old)
      for _, h in ipairs(hashes) do redis.call('HDEL', h, old) end
    end
    forgotten = forgotten + #ids
  end
  forget(redis.call('ZRANGEBYSCORE', dead, '-inf', now - max_age, 'LIMIT', 0, 1000))
  local excess = redis.call('ZCARD', dead) - max_dead
  if excess > 0 then
    forget(redis.call('ZRANGE', dead, 0, math.min(excess, 1000) - 1))
  end
  return forgotten
end
