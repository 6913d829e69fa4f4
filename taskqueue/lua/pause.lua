--[[ pause: stop workers from taking jobs of a queue (enqueue still works; jobs wait).
KEYS[1] paused      SET   names of paused queues
KEYS[2] queues      SET   every queue name used (a paused queue is listed even before its first job)
ARGV[1] queue       queue name
Returns: 1 if the queue was running, 0 if it was paused already.
]]
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('SADD', KEYS[1], ARGV[1])
