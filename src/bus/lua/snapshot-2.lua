--[[
  snapshot-2: store the snapshot of the folded journal if the lease is ours.

  KEYS[1] sy:{c}:leader
  KEYS[2] sy:{c}:snapshot
  ARGV[1] token
  ARGV[2] snapshot JSON

  Output: 1 written, -1 not the leader
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
