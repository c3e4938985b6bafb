-- unique_run_release: release a while_running lock, only if this job holds it.
-- KEYS[1] unique_run STRING
-- ARGV[1] job id
-- returns 1 if released, 0 if another job (or none) holds it (nothing changed)
if redis.call('TYPE', KEYS[1])['ok'] == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
