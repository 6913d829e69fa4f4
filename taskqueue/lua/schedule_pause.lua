--[[ schedule_pause: stop a schedule from firing (its slots pass unfired until resumed).
KEYS[1] schedule    HASH  the schedule's definition and state
KEYS[2] due         ZSET  name -> next slot (ms) of every schedule that is not paused
ARGV[1] name        schedule name
Returns: 1 if it was running, 0 if it was paused already, -1 if there is no such schedule.
]]
if not redis.call('HGET', KEYS[1], 'digest') then return -1 end
if redis.call('HGET', KEYS[1], 'paused') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'paused', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
