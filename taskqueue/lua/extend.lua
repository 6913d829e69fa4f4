--[[ extend: renew the leases of jobs still held by their worker (the heartbeat).
KEYS[1..] two per job: job HASH, active ZSET of its queue
ARGV[1] lease_ms    new lease length from now
ARGV[2..] two per job, same order: job id, lease token
Returns: {lost, cancelled}: ids whose lease moved on (stop working on them, the result would be
        discarded) and ids whose cancellation was requested (stop them, then fail them).
]]
--@include now_ms
local now = now_ms()
local deadline = now + tonumber(ARGV[1])
local lost, cancelled = {}, {}
for i = 0, #KEYS / 2 - 1 do
  local job_key, active = KEYS[1 + i * 2], KEYS[2 + i * 2]
  local id, token = ARGV[2 + i * 2], ARGV[3 + i * 2]
  local f = redis.call('HMGET', job_key, 'token', 'cancel')
  if f[1] ~= token or token == '' then
    lost[#lost + 1] = id
  else
    redis.call('ZADD', active, 'XX', deadline, id)
    if f[2] == '1' then cancelled[#cancelled + 1] = id end
  end
end
return {lost, cancelled}
