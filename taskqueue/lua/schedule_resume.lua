--[[ schedule_resume: let a paused schedule fire again, from its next slot after now (the
slots that passed while it was paused are not fired).
KEYS[1] schedule    HASH  the schedule's definition and state
KEYS[2] due         ZSET  name -> next slot (ms) of every schedule that is not paused
ARGV[1] name        schedule name
ARGV[2] next_ms     its first slot after now, computed by the caller from Redis time
Returns: 1 if it was paused, 0 if it was running already, -1 if there is no such schedule.
]]
if not redis.call('HGET', KEYS[1], 'digest') then return -1 end
if redis.call('HGET', KEYS[1], 'paused') ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 'paused', 0, 'next_ms', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
