--[[
  range-1: read a stream after a cursor, without ever sending an oversized entry.

  KEYS[1] the stream
  ARGV[1] cursor (exclusive; '0-0' = from the start), or 'newest' for the newest
          entries (newest first)
  ARGV[2] count
  ARGV[3] max bytes

  Output: [[id, value], ...] where value is the entry's "e" field, "\0-" when it has
  none, or "\0<bytes>" when it is larger than max bytes (the caller rejects it unread)
]]
local rows
if ARGV[1] == 'newest' then
  rows = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', tonumber(ARGV[2]))
else
  rows = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
end
local max = tonumber(ARGV[3])
local out = {}
for i, row in ipairs(rows) do
  local value = '\0-'
  local fields = row[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'e' then value = fields[j + 1] end
  end
  if #value > max then value = '\0' .. #value end
  out[i] = {row[1], value}
end
return out
