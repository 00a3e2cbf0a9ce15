--[[
  lease-2: acquire or renew the cluster's leader lease.

  KEYS[1] sy:{c}:leader
  KEYS[2] sy:{c}:epoch
  ARGV[1] coordinator id
  ARGV[2] ttl ms
  ARGV[3] token we hold ('' if none)

  Output:
    { 1, token }  renewed
    { 2, token }  acquired (a new epoch)
    { 0, holder } held by another
]]
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, cur}
  end
  return {0, cur}
end
local epoch = redis.call('INCR', KEYS[2])
local token = epoch .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return {2, token}
