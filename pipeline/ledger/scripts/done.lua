-- Helper, prepended to the scripts that say `-- uses: done`.
-- A done item keeps one field in a shared hash instead of a hash of its own:
-- ``{prefix}:done:{first 3 hex of the key}`` (4,096 hashes), field: the key's other 29 hex, value:
-- ``job \31 expected segments \31 category \31 last job that skipped it`` (``records.DoneRecord``).
-- done(p, key): its bucket and field. done_get(p, key): {job, exp, cat, sj} or nil.
-- done_put(p, key, job, exp, cat, sj): record it and drop the item's own hash and written-pk set.
-- done_del(p, key): forget the record (the item is queued again and gets a hash of its own).
local function done(p, key)
  return p .. ':done:' .. string.sub(key, 1, 3), string.sub(key, 4)
end
local function done_get(p, key)
  local bucket, field = done(p, key)
  local v = redis.call('HGET', bucket, field)
  if not v then return nil end
  local out = {}
  for part in string.gmatch(v .. '\31', '([^\31]*)\31') do out[#out + 1] = part end
  return out
end
local function done_put(p, key, job, exp, cat, sj)
  local bucket, field = done(p, key)
  redis.call('HSET', bucket, field, table.concat({job, exp or '', cat or '', sj or ''}, '\31'))
  redis.call('DEL', p .. ':item:' .. key, p .. ':item:' .. key .. ':w')
end
local function done_del(p, key)
  local bucket, field = done(p, key)
  redis.call('HDEL', bucket, field)
end
