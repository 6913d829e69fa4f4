--[[ enqueue_now: queue one job now, with no idempotency key, delay, time or expiry: the single
enqueue a producer sends most, with the record, queueing, wake token and counters of `enqueue`
(a batch of one such job there lands the same), in 13 arguments instead of 21 and no loops.
KEYS[1] stats       HASH  counters per queue and task (`<queue>@<task>`); `<stats>:<minute>` derived, same hash tag
KEYS[2] queues      SET   every queue name ever used
KEYS[3] job         HASH  the new job's record
KEYS[4] ready       LIST  the queue's ready ids
KEYS[5] wake        LIST  the queue's wake tokens
ARGV[1] id
ARGV[2] task
ARGV[3] queue
ARGV[4] payload
ARGV[5] max_retries
ARGV[6] timeout_ms
ARGV[7] dead_letter (1/0)
ARGV[8] ttl_ms
Returns: {id, 0}: the same reply as `enqueue` gives for one new job.
]]
--@include now_ms
--@include count
--@include wake
--@include new_job
local now = now_ms()
local id, task, queue = ARGV[1], ARGV[2], ARGV[3]
new_job(KEYS[3], KEYS[4], nil, now, now, id, task, queue, ARGV[4], ARGV[5], ARGV[6], ARGV[7],
  ARGV[8])
wake(KEYS[5], 1)
redis.call('SADD', KEYS[2], queue)
count(KEYS[1], queue .. '@' .. task, 'enqueued', 1, now)
return {id, 0}
