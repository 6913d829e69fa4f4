-- pick_ids(dead_key, first_arg, limit): the job ids given in ARGV from `first_arg` on, or, when
-- none are given, the oldest `limit` members of the dead letter.
local function pick_ids(dead_key, first_arg, limit)
  local ids = {}
  if #ARGV >= first_arg then
    for i = first_arg, #ARGV do ids[#ids + 1] = ARGV[i] end
    return ids
  end
  return redis.call('ZRANGE', dead_key, 0, limit - 1)
end
