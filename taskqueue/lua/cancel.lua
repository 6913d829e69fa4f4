--[[ cancel: stop a job that has not finished, in O(1) whatever the queue's length. Queued: finished
as cancelled, and its id is left in the ready list as a tombstone (counted per queue), which fetch
and purge drop unrun when they pop it. Scheduled: removed from the scheduled set and finished as
cancelled. Active: flagged; its worker learns it at the next lease extension, stops the task and
fails it, which finishes it as cancelled (so do recover and release).
KEYS[1] job         HASH
KEYS[2] tombs       HASH  queue -> tombstones in its ready list (one more for a queued job)
KEYS[3] scheduled   ZSET  the job's queue's scheduled set
KEYS[4] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
KEYS[5] done        LIST  result waiters of this job
Returns: 'cancelled' | 'requested' (active: the worker will stop it) | 'missing' |
        'finished:<state>' when it had already ended (succeeded, failed, dead, cancelled).
]]
--@include now_ms
--@include num
--@include count
--@include finish
local now = now_ms()
local f = redis.call('HMGET', KEYS[1], 'state', 'id', 'queue', 'ttl_ms')
local state, id = f[1], f[2]
if not state then return 'missing' end
if state == 'queued' or state == 'scheduled' then
  if state == 'queued' then
    local tombs = num(redis.call('HGET', KEYS[2], f[3]), 0)
    redis.call('HSET', KEYS[2], f[3], math.max(tombs, 0) + 1)
  else
    redis.call('ZREM', KEYS[3], id)
  end
  finish(KEYS[1], KEYS[5], 'cancelled', now, num(f[4], 0))
  count(KEYS[4], f[3], 'cancelled', 1, now)
  return 'cancelled'
end
if state == 'active' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 'requested'
end
return 'finished:' .. state
