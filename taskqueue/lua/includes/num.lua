-- num(v, default): a field read from a record as a number, or `default` when it is missing or
-- not a number. Record fields are only ever converted through it, so a corrupt record can never
-- make a script raise an error after its first write (Redis does not roll a script back).
local function num(v, default)
  return tonumber(v) or default
end
