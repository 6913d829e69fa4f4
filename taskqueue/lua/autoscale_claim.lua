--[[ autoscale_claim: claim one scaling step for the whole namespace, so that a burst seen by
several masters is answered by one of them per cooldown, and log the step.
KEYS[1] claim       STRING `<base>autoscaler:claim:<up|down>`: id of the master that scaled last in
        that direction; expires after the cooldown
KEYS[2] log         LIST  the namespace's recent scaling steps (JSON, newest first, capped)
ARGV[1] master      id of the claiming master
ARGV[2] claim_ms    how long the claim holds (the direction's cooldown); '0' = claim nothing,
        only log (a min/max correction, which is this master's own business)
ARGV[3] record      JSON object describing the step; `at_ms` (Redis time) and `master` are added
ARGV[4] log_max     entries kept in the log
Returns: {1, master, 0} when granted (and logged); {0, holder, ms_left} when another master holds
the claim (nothing written).
]]
--@include now_ms
local claim_ms = tonumber(ARGV[2])
if claim_ms > 0 then
  local holder = redis.call('GET', KEYS[1])
  if holder and holder ~= ARGV[1] then
    return {0, holder, redis.call('PTTL', KEYS[1])}
  end
end
local ok, record = pcall(cjson.decode, ARGV[3])
if not ok or type(record) ~= 'table' then
  return redis.error_reply('ERR autoscale_claim: record is not JSON')
end
if claim_ms > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', claim_ms)
end
record['at_ms'] = now_ms()
record['master'] = ARGV[1]
redis.call('LPUSH', KEYS[2], cjson.encode(record))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
return {1, ARGV[1], 0}
