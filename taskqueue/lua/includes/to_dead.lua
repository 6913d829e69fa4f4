-- to_dead(base, dead_key, id, now, max_count, max_age_ms): put a job in the dead letter, wake its
-- result waiters, and trim the oldest entries (by age, then by count) in a bounded step of at most
-- 10. Derived keys (same hash tag): `<base>job:<id>` records of trimmed jobs are deleted with them,
-- `<base>done:<id>` is the waiter list.
local function to_dead(base, dead_key, id, now, max_count, max_age_ms)
  local job_key = base .. 'job:' .. id
  redis.call('HSET', job_key, 'state', 'dead', 'finished_ms', now, 'token', '')
  redis.call('PERSIST', job_key)
  redis.call('ZADD', dead_key, now, id)
  local old = redis.call('ZRANGEBYSCORE', dead_key, '-inf', now - max_age_ms, 'LIMIT', 0, 10)
  for _, old_id in ipairs(old) do
    redis.call('ZREM', dead_key, old_id)
    redis.call('DEL', base .. 'job:' .. old_id)
  end
  local excess = redis.call('ZCARD', dead_key) - max_count
  if excess > 0 then
    local popped = redis.call('ZPOPMIN', dead_key, math.min(excess, 10))
    for i = 1, #popped, 2 do redis.call('DEL', base .. 'job:' .. popped[i]) end
  end
  if redis.call('HGET', job_key, 'waiting') == '1' then
    local done_key = base .. 'done:' .. id
    redis.call('RPUSH', done_key, '1')
    redis.call('PEXPIRE', done_key, 60000)
  end
end
