-- finish(job_key, done_key, state, now, ttl_ms): mark a job terminal, expire its record, wake result waiters.
local function finish(job_key, done_key, state, now, ttl_ms)
  redis.call('HSET', job_key, 'state', state, 'finished_ms', now, 'token', '')
  if ttl_ms > 0 then redis.call('PEXPIRE', job_key, ttl_ms) end
  if redis.call('HGET', job_key, 'waiting') == '1' then
    redis.call('RPUSH', done_key, '1')
    redis.call('PEXPIRE', done_key, math.max(ttl_ms, 60000))
  end
end
