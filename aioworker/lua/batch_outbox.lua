-- batch_outbox: a queue's outbox of batch events: push entries, or claim entries to drain.
-- Claimed entries stay in the claims set until the drainer reports them handled; claims of
-- a drainer that died expire and are handed out again (applying an entry twice is harmless).
-- KEYS[1] batch_outbox LIST, KEYS[2] batch_claims ZSET
-- ARGV[1] mode: 'push' or 'claim'
--   push:  ARGV[2..] entries to append; returns the outbox length
--   claim: ARGV[2] max entries to claim, ARGV[3] claim_ms, ARGV[4..] entries the caller
--          handled (removed from the claims first); returns the entries now claimed by the
--          caller: expired claims first, then from the head of the outbox
-- Moves no job; both keys are type-checked before the first write.
local outbox, claims = KEYS[1], KEYS[2]
aw_types(outbox, 'list', claims, 'zset')
if ARGV[1] == 'push' then
  for i = 2, #ARGV do redis.call('RPUSH', outbox, ARGV[i]) end
  return redis.call('LLEN', outbox)
end
local max, claim_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV do redis.call('ZREM', claims, ARGV[i]) end
if max <= 0 then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = redis.call('ZRANGEBYSCORE', claims, '-inf', now, 'LIMIT', 0, max)
if #out < max then
  local fresh = redis.call('LPOP', outbox, max - #out)
  if fresh then
    for _, entry in ipairs(fresh) do out[#out + 1] = entry end
  end
end
for _, entry in ipairs(out) do redis.call('ZADD', claims, now + claim_ms, entry) end
return out
