--[[ ack: complete one or more leased jobs; store each result until the record expires.
KEYS[1] stats       HASH  counters per queue and task (`<queue>@<task>`); `<stats>:<minute>` derived, same hash tag
KEYS[2..] three per job: job HASH, active ZSET of its queue, done LIST (result waiters)
ARGV[1..] two per job, same order: lease token, result (MessagePack bytes)
Derived keys: the worker's held set named by the job's `held` field (same hash tag).
Returns: array with one integer per job: 1 acknowledged, 0 lease lost (another worker owns the
        job now, or it was finished already: the result is discarded and counted as a duplicate).
        An ack sent again with the token that already settled the job (its first reply was lost
        on the way: a timeout, a cut connection) is 1 again and changes nothing: the record keeps
        that token as `settled`.
]]
--@include now_ms
--@include num
--@include tally
--@include call_many
local now = now_ms()
local out = {}
local n = (#KEYS - 1) / 3
-- Acknowledged ids by active set and by held set: one ZREM and one SREM per set, after the loop.
local unlease, unheld, order = {}, {}, {}
local function add(sets, key, id)
  local ids = sets[key]
  if not ids then
    ids = {}
    sets[key] = ids
    order[#order + 1] = {sets, key}
  end
  ids[#ids + 1] = id
end
for i = 0, n - 1 do
  local job_key, active, done_key = KEYS[2 + i * 3], KEYS[3 + i * 3], KEYS[4 + i * 3]
  local token = ARGV[1 + i * 2]
  local f = redis.call('HMGET', job_key, 'token', 'queue', 'started_ms', 'ttl_ms', 'id', 'held',
    'waiting', 'task', 'settled')
  if token ~= '' and f[1] ~= token and f[9] == token then
    out[#out + 1] = 1  -- this very ack landed before; its reply was lost
  elseif f[1] ~= token or token == '' then
    out[#out + 1] = 0
    if f[2] then tally(f[2], 'duplicates', 1) end
  else
    local id, ttl = f[5], num(f[4], 0)
    add(unlease, active, id)
    if f[6] then add(unheld, f[6], id) end
    redis.call('HSET', job_key, 'result', ARGV[2 + i * 2], 'state', 'succeeded',
      'finished_ms', now, 'token', '', 'settled', token)
    if ttl > 0 then redis.call('PEXPIRE', job_key, ttl) end
    if f[7] == '1' then
      redis.call('RPUSH', done_key, '1')
      redis.call('PEXPIRE', done_key, math.max(ttl, 60000))
    end
    local owner = f[2] .. '@' .. (f[8] or '')
    tally(owner, 'succeeded', 1)
    sample(owner, 'run', now - num(f[3], now))
    out[#out + 1] = 1
  end
end
for _, set in ipairs(order) do
  local sets, key = set[1], set[2]
  call_many(sets == unlease and 'ZREM' or 'SREM', key, sets[key])
end
flush_tally(KEYS[1], now)
return out
