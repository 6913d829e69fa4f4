--[[ dead_delete: delete jobs from the dead letter, records included.
KEYS[1] dead        ZSET  dead letter
ARGV[1] base        key prefix with hash tag; job records `<base>job:<id>` are derived
ARGV[2] limit       with no ids: most jobs deleted in this call (oldest first)
ARGV[3..] job ids to delete; none means "the oldest `limit` dead jobs"
Returns: the number of jobs deleted.
]]
--@include pick_ids
local base = ARGV[1]
local ids = pick_ids(KEYS[1], 3, tonumber(ARGV[2]))
local deleted = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('DEL', base .. 'job:' .. id)
    deleted = deleted + 1
  end
end
return deleted
