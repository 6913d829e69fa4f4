-- new_job(job_key, ready, sched, now, due, id, task, queue, payload, max_retries, timeout_ms,
-- dead_letter, ttl_ms): write a fresh job record, then queue it (due <= now: RPUSH on ready) or
-- schedule it (ZADD on sched at due). Returns its state: 'queued' or 'scheduled'.
local function new_job(job_key, ready, sched, now, due, id, task, queue, payload, max_retries,
                       timeout_ms, dead_letter, ttl_ms)
  local state = 'queued'
  if due > now then state = 'scheduled' end
  redis.call('HSET', job_key, 'id', id, 'task', task, 'queue', queue, 'payload', payload,
    'state', state, 'attempts', 0, 'failures', 0, 'stalls', 0, 'max_retries', max_retries,
    'timeout_ms', timeout_ms, 'enqueued_ms', now, 'due_ms', due, 'dead_letter', dead_letter,
    'ttl_ms', ttl_ms)
  if state == 'scheduled' then
    redis.call('ZADD', sched, due, id)
  else
    redis.call('RPUSH', ready, id)
  end
  return state
end
