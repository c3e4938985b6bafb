-- status: read where one job is, atomically.
-- KEYS[1] result STRING, KEYS[2] active ZSET, KEYS[3] scheduled ZSET, KEYS[4] dead ZSET,
-- KEYS[5] jobs HASH, KEYS[6] attempts HASH, KEYS[7] errors HASH, KEYS[8] state HASH
-- ARGV[1] job id
-- returns {where, result or '', record or '', attempts or '', error or '', state or '', score or ''}
--   where: result | active | scheduled | dead | queued | missing
-- Writes nothing; the keys are type-checked for a clear error.
local id = ARGV[1]
aw_types(KEYS[1], 'string', KEYS[2], 'zset', KEYS[3], 'zset', KEYS[4], 'zset', KEYS[5], 'hash',
  KEYS[6], 'hash', KEYS[7], 'hash', KEYS[8], 'hash')
local function field(key) return redis.call('HGET', key, id) or '' end
local result = redis.call('GET', KEYS[1])
local where, score = 'missing', false
if result then
  where = 'result'
else
  score = redis.call('ZSCORE', KEYS[2], id)
  if score then where = 'active' else
    score = redis.call('ZSCORE', KEYS[3], id)
    if score then where = 'scheduled' else
      score = redis.call('ZSCORE', KEYS[4], id)
      if score then where = 'dead' elseif redis.call('HEXISTS', KEYS[5], id) == 1 then
        where = 'queued'
      end
    end
  end
end
return {where, result or '', field(KEYS[5]), field(KEYS[6]), field(KEYS[7]), field(KEYS[8]),
  score or ''}
