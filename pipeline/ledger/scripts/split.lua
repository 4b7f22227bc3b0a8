-- Helper, prepended to the scripts that say `-- uses: split`.
-- split(s): the fields of a waiting record, cut at the unit separator (byte 31, ``SEP`` in
-- store.py).
local function split(s)
  local out = {}; local start = 1
  while true do
    local i = string.find(s, '\31', start, true)
    if not i then out[#out + 1] = string.sub(s, start); return out end
    out[#out + 1] = string.sub(s, start, i - 1); start = i + 1
  end
end
