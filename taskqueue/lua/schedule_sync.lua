--[[ schedule_sync: make the schedules in Redis exactly the given ones (a master's code and
config, at start and on reload): add new ones, update changed ones, remove all others.
KEYS[1] index       SET   names of every schedule
KEYS[2] due         ZSET  name -> next slot (ms) of every schedule that is not paused
KEYS[3..] one per schedule, same order as in ARGV: its HASH (definition and state)
ARGV[1] base        key prefix with hash tag; the hashes of removed schedules, `<base>sched:<name>`,
        are derived from the index (same hash tag)
ARGV[2..] per schedule: name, digest, next_ms (its first slot after now, for a new or changed
        definition), m, then m field/value pairs of the definition
Returns: {added, changed, removed, unchanged}. An unchanged schedule (same digest) keeps its
        state: next slot (so slots missed while every master was down are misfires), pause,
        last firing.
]]
--@include now_ms
local now = now_ms()
local base = ARGV[1]
local keep = {}
local added, changed, removed, unchanged = 0, 0, 0, 0
local i, k = 2, 3
while i <= #ARGV do
  local name, digest, next_ms, m = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local h = KEYS[k]
  keep[name] = true
  local old = redis.call('HMGET', h, 'digest', 'paused', 'next_ms')
  if old[1] == digest then
    unchanged = unchanged + 1
    if old[2] ~= '1' and old[3] then redis.call('ZADD', KEYS[2], old[3], name) end
  else
    local fields = {}
    for j = 0, 2 * m - 1 do fields[j + 1] = ARGV[i + 4 + j] end
    redis.call('HSET', h, 'digest', digest, 'next_ms', next_ms, 'updated_ms', now, unpack(fields))
    if old[1] then changed = changed + 1 else
      added = added + 1
      redis.call('HSET', h, 'paused', 0, 'created_ms', now)
    end
    if old[2] ~= '1' then redis.call('ZADD', KEYS[2], next_ms, name) end
    redis.call('SADD', KEYS[1], name)
  end
  i = i + 4 + 2 * m
  k = k + 1
end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not keep[name] then
    redis.call('DEL', base .. 'sched:' .. name)
    redis.call('ZREM', KEYS[2], name)
    redis.call('SREM', KEYS[1], name)
    removed = removed + 1
  end
end
return {added, changed, removed, unchanged}
