-- jobs_page: a page of one queue's jobs in one state, with what is stored about each.
-- KEYS[1] ready LIST, KEYS[2] scheduled ZSET, KEYS[3] active ZSET, KEYS[4] dead ZSET,
-- KEYS[5] jobs HASH, KEYS[6] attempts HASH, KEYS[7] errors HASH, KEYS[8] leases HASH,
-- KEYS[9] fair ZSET (ready jobs of fair-share groups)
-- ARGV[1] state: ready | scheduled | running | dead, ARGV[2] offset, ARGV[3] count,
-- ARGV[4] most bytes of each record returned (longer ones are cut; 0 = whole)
-- returns {now_ms, total, {id, score, record, attempts, error, lease token, ...}} with ''
--   for what is missing; order: ready from the head of the list (next to run first), then
--   the jobs of fair-share groups in their fair order; scheduled by run time, running by
--   lease deadline, dead newest first
-- every key is type-checked before the first command that could fail on it
aw_types(KEYS[1], 'list', KEYS[2], 'zset', KEYS[3], 'zset', KEYS[4], 'zset', KEYS[5], 'hash',
  KEYS[6], 'hash', KEYS[7], 'hash', KEYS[8], 'hash', KEYS[9], 'zset')
local ready, scheduled, active, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local jobs, attempts, errors, leases, fair = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local state, offset, count, cut = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total, ids, scores = 0, {}, {}
local last = offset + count - 1
if state == 'ready' then
  local in_list = redis.call('LLEN', ready)
  total = in_list
  if fair then total = total + redis.call('ZCARD', fair) end
  if count > 0 and offset < in_list then ids = redis.call('LRANGE', ready, offset, last) end
  if fair and count > #ids and last >= in_list then
    local from = math.max(offset - in_list, 0)
    for _, id in ipairs(redis.call('ZRANGE', fair, from, from + count - #ids - 1)) do
      ids[#ids + 1] = id
    end
  end
else
  local key = scheduled
  if state == 'running' then key = active elseif state == 'dead' then key = dead end
  total = redis.call('ZCARD', key)
  if count > 0 then
    local flat
    if state == 'dead' then
      flat = redis.call('ZRANGE', key, offset, last, 'REV', 'WITHSCORES')
    else
      flat = redis.call('ZRANGE', key, offset, last, 'WITHSCORES')
    end
    for i = 1, #flat, 2 do
      ids[#ids + 1] = flat[i]
      scores[#scores + 1] = flat[i + 1]
    end
  end
end
local out = {}
for i, id in ipairs(ids) do
  local record = redis.call('HGET', jobs, id) or ''
  if cut > 0 and #record > cut then record = string.sub(record, 1, cut) end
  out[#out + 1] = id
  out[#out + 1] = scores[i] or ''
  out[#out + 1] = record
  out[#out + 1] = redis.call('HGET', attempts, id) or ''
  out[#out + 1] = redis.call('HGET', errors, id) or ''
  out[#out + 1] = redis.call('HGET', leases, id) or ''
end
return {now, total, out}
