--[[ watch: read a job's outcome and, if it has not finished, ask its finisher to push to the
job's done list so that the caller can block on it (BLPOP) instead of polling.
KEYS[1] job         HASH
Returns: nil if the job does not exist, else {state, result, error, traceback}.
]]
local f = redis.call('HMGET', KEYS[1], 'state', 'result', 'error', 'traceback')
if not f[1] then return nil end
if f[1] ~= 'succeeded' and f[1] ~= 'failed' and f[1] ~= 'dead' and f[1] ~= 'cancelled' then
  redis.call('HSET', KEYS[1], 'waiting', '1')
end
return f
