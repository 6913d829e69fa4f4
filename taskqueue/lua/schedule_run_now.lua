--[[ schedule_run_now: enqueue one job of a schedule now, outside its slots (paused or not); its
next slot does not move.
KEYS[1] schedule    HASH  the schedule's definition and state
KEYS[2] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
KEYS[3] queues      SET   every queue name used
KEYS[4] job         HASH  the new job's record
KEYS[5] ready       LIST  the ready list of the schedule's queue
KEYS[6] wake        LIST  the wake list of the schedule's queue
ARGV[1] name        schedule name
ARGV[2] digest      definition digest the caller read (keys 5 and 6 come from it)
ARGV[3] id          id of the new job
Returns: {status, job id or ''}; status is fired, gone (no such schedule) or stale (its
        definition changed meanwhile: read it again).
]]
--@include now_ms
--@include tally
--@include wake
--@include new_job
local now = now_ms()
local h = KEYS[1]
local f = redis.call('HMGET', h, 'digest', 'task', 'queue', 'payload', 'max_retries',
  'timeout_ms', 'dead_letter', 'ttl_ms')
if not f[1] then return {'gone', ''} end
if f[1] ~= ARGV[2] then return {'stale', ''} end
local id, queue = ARGV[3], f[3]
new_job(KEYS[4], KEYS[5], nil, now, now, id, f[2], queue, f[4], f[5], f[6], f[7], f[8])
redis.call('HSET', KEYS[4], 'schedule', ARGV[1], 'slot_ms', now, 'missed', 0, 'manual', 1)
wake(KEYS[6], 1)
redis.call('SADD', KEYS[3], queue)
tally(queue, 'enqueued', 1)
flush_tally(KEYS[2], now)
redis.call('HSET', h, 'last_fired_ms', now, 'last_job', id, 'last_missed', 0)
return {'fired', id}
