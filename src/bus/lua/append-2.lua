--[[
  append-2: append entries to the journal if, and only if, the lease is ours, and wake
  the readers.

  KEYS[1] sy:{c}:leader
  KEYS[2] sy:{c}:log
  ARGV[1] token
  ARGV[2] wake channel
  ARGV[3..n] JSON entries

  Output: list of stream ids, or -1 when the lease is not ours (a deposed leader)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'e', ARGV[i])
end
redis.call('PUBLISH', ARGV[2], '1')
return ids
