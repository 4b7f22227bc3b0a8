-- uses: queue
-- JobStore.retry. ARGV: prefix, job. failed -> waiting for the job's own failed items and for the
-- failed items it found from earlier jobs (``:pfailed``, which then count as queued); returns how
-- many.
local p, job = ARGV[1], ARGV[2]
local jk = p .. ':job:' .. job
local n = 0
local function requeue(key, own)
  local ik = p .. ':item:' .. key
  local h = redis.call('HMGET', ik, 's', 'cat', 'url', 'title', 'meta', 'j')
  if h[1] ~= 'failed' or not h[3] then return true end
  if own and h[6] ~= job then return false end
  queue(p, ik, job, table.concat({key, h[2], h[3], h[4] or '', h[5] or '{}'}, '\31'))
  if own then redis.call('HINCRBY', jk, 'failed', -1)
  else
    redis.call('HINCRBY', jk, 'previously_failed', -1)
    redis.call('HINCRBY', jk, 'queued', 1)
  end
  n = n + 1
  return true
end
for _, key in ipairs(redis.call('SMEMBERS', jk .. ':failed')) do
  if requeue(key, true) then redis.call('SREM', jk .. ':failed', key) end
end
for _, key in ipairs(redis.call('SMEMBERS', jk .. ':pfailed')) do
  requeue(key, false)
  redis.call('SREM', jk .. ':pfailed', key)
end
return n
