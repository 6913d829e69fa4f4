--[[ dead_delete: delete jobs from the dead letter, records included.
KEYS[1] dead        ZSET  dead letter
ARGV[1] base        key prefix with hash tag; job records `<base>job:<id>` are derived
ARGV[2] limit       with no ids: most jobs deleted in this call (oldest first)
ARGV[3..] job ids to delete; none means "the oldest `limit` dead jobs"
Returns: the number of jobs deleted.
]]
local base = ARGV[1]
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
end
local deleted = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('DEL', base .. 'job:' .. id)
    deleted = deleted + 1
  end
end
return deleted
