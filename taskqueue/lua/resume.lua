--[[ resume: let workers take jobs of a paused queue again, and wake the idle ones.
KEYS[1] paused      SET   names of paused queues
KEYS[2] ready       LIST  the queue's ready jobs
KEYS[3] wake        LIST  the queue's wake tokens
ARGV[1] queue       queue name
Returns: 1 if the queue was paused, 0 if it was running already.
]]
--@include wake
local was = redis.call('SREM', KEYS[1], ARGV[1])
local waiting = redis.call('LLEN', KEYS[2])
if waiting > 0 then wake(KEYS[3], waiting) end
return was
