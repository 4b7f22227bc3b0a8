-- Helper, prepended to the scripts that say `-- uses: pack`.
-- pack(key): an item key (32 hex digits) as the 16 bytes a job's packed index holds.
local function pack(key)
  return (string.gsub(key, '%x%x', function(h) return string.char(tonumber(h, 16)) end))
end
