-- uses: pack
-- compact_ledger (``pipeline/ledger/compact.py``). ARGV: prefix, job, n. Moves up to n keys from the
-- head of the job's hex list (``{prefix}:job:{job}:items``, written before the index was packed)
-- to its packed index (``:keys``), in one step, so admissions running meanwhile lose nothing.
-- Returns how many keys are left in the list.
local list = ARGV[1] .. ':job:' .. ARGV[2] .. ':items'
local n = tonumber(ARGV[3])
local head = redis.call('LRANGE', list, 0, n - 1)
local packed = {}
for i, key in ipairs(head) do packed[i] = pack(key) end
if #packed > 0 then
  redis.call('APPEND', ARGV[1] .. ':job:' .. ARGV[2] .. ':keys', table.concat(packed))
end
redis.call('LTRIM', list, #head, -1)
return redis.call('LLEN', list)
