--[[
  release-1: give the lease up if we still hold it.

  KEYS[1] sy:{c}:leader
  ARGV[1] token

  Output: 1 released, 0 not ours
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
