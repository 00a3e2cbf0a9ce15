--[[
  routing-3: publish the routing table and the journal's primary if the lease is ours.

  KEYS[1] sy:{c}:leader
  KEYS[2] sy:{c}:routing
  KEYS[3] sy:{c}:primary
  ARGV[1] token
  ARGV[2] table JSON
  ARGV[3] channel
  ARGV[4] primary JSON ('' = none)

  Output: 1 written, -1 not the leader
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[4] == '' then
  redis.call('DEL', KEYS[3])
else
  redis.call('SET', KEYS[3], ARGV[4])
end
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
