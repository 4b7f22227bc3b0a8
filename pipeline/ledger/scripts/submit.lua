-- uses: queue, done
-- JobStore.submit_batch: a batch of items into a job.
-- ARGV: prefix, job, force, retry_failed, retry_transient (0/1 each), then (key, record) pairs.
-- Returns {queued, duplicates, skipped, busy, previously_failed}. ``sj`` remembers the last job
-- that saw an item it did not queue, so repeats in that job are duplicates. A failed item is queued
-- again only when forced, asked for (retry_failed), or when it failed for a transient reason
-- (``ft``) and retry_transient is set; otherwise it is counted as previously failed (its reason
-- stays) and the job's ``:pfailed`` set remembers it for ``retry``. An item in flight for another
-- job joins the job's ``:busy`` set: the job finishes only when they have settled. A done item is
-- found by its compact record (``done``) or, written before records were compact, its own hash.
local p, job = ARGV[1], ARGV[2]
local force, refail, retrans = ARGV[3] == '1', ARGV[4] == '1', ARGV[5] == '1'
local jk = p .. ':job:' .. job
local queued, dup, skipped, busy, pfailed = 0, 0, 0, 0, 0
for i = 6, #ARGV, 2 do
  local key, rec = ARGV[i], ARGV[i + 1]
  local ik = p .. ':item:' .. key
  local st = redis.call('HMGET', ik, 's', 'j', 'sj', 'ft')
  local d = nil
  if not st[1] then
    d = done_get(p, key)
    if d then st = {'done', d[1], d[4], nil} end
  end
  local s = st[1]
  if st[2] == job or st[3] == job then dup = dup + 1
  elseif s == 'done' and not force then
    skipped = skipped + 1
    if d then done_put(p, key, d[1], d[2], d[3], job) else redis.call('HSET', ik, 'sj', job) end
  elseif s == 'failed' and not (force or refail or (retrans and st[4] == '1')) then
    pfailed = pfailed + 1
    redis.call('HSET', ik, 'sj', job)
    redis.call('SADD', jk .. ':pfailed', key)
  elseif s and s ~= 'done' and s ~= 'failed' then
    busy = busy + 1
    redis.call('HSET', ik, 'sj', job)
    redis.call('SADD', jk .. ':busy', key)
  else
    if d then done_del(p, key) end
    queue(p, ik, job, rec)
    queued = queued + 1
  end
end
redis.call('HINCRBY', jk, 'queued', queued)
redis.call('HINCRBY', jk, 'duplicates', dup)
redis.call('HINCRBY', jk, 'skipped', skipped)
redis.call('HINCRBY', jk, 'in_progress', busy)
redis.call('HINCRBY', jk, 'previously_failed', pfailed)
redis.call('HINCRBY', jk, 'accepted', queued + skipped + busy + pfailed)
return {queued, dup, skipped, busy, pfailed}
