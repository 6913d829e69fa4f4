--[[ cancel: stop a job that has not finished. Queued or scheduled: removed and finished as
cancelled. Active: flagged; its worker learns it at the next lease extension, stops the task and
fails it, which finishes it as cancelled (so do recover and release).
KEYS[1] job         HASH
KEYS[2] ready       LIST  the job's queue (LREM: O(length), cancel is rare)
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
  redis.call('LREM', KEYS[2], 1, id)
  redis.call('ZREM', KEYS[3], id)
  finish(KEYS[1], KEYS[5], 'cancelled', now, num(f[4], 0))
  count(KEYS[4], f[3], 'cancelled', 1, now)
  return 'cancelled'
end
if state == 'active' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 'requested'
end
return 'finished:' .. state
