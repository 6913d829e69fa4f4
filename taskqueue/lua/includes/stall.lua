-- stall(base, dead_key, stats_key, active_key, ready_key, wake_key, id, now, max_stalls, reason,
--       dead_max, dead_age_ms): a job lost its worker. Count a stall; a job cancelled meanwhile ends
-- cancelled, one past max_stalls goes to the dead letter ("poison pill"), any other goes back to the
-- head of its queue without spending a retry. Returns 'queued' | 'dead' | 'cancelled' | 'gone'.
-- Needs includes: now_ms, num, finish, count, wake, to_dead, unhold.
local function stall(base, dead_key, stats_key, active_key, ready_key, wake_key, id, now, max_stalls,
                     reason, dead_max, dead_age_ms)
  local job_key = base .. 'job:' .. id
  redis.call('ZREM', active_key, id)
  local f = redis.call('HMGET', job_key, 'queue', 'cancel', 'ttl_ms', 'stalls')
  if not f[1] then return 'gone' end
  unhold(job_key, id)
  local stalls = num(f[4], 0) + 1
  redis.call('HSET', job_key, 'stalls', stalls)
  if f[2] == '1' then
    finish(job_key, base .. 'done:' .. id, 'cancelled', now, num(f[3], 0))
    count(stats_key, f[1], 'cancelled', 1, now)
    return 'cancelled'
  end
  if stalls > max_stalls then
    redis.call('HSET', job_key, 'error', reason .. ' (worker lost ' .. stalls .. ' times)')
    to_dead(base, dead_key, id, now, dead_max, dead_age_ms)
    count(stats_key, f[1], 'dead', 1, now)
    return 'dead'
  end
  redis.call('HSET', job_key, 'state', 'queued', 'token', '')
  redis.call('LPUSH', ready_key, id)
  wake(wake_key, 1)
  count(stats_key, f[1], 'stalled', 1, now)
  return 'queued'
end
