-- wrk script of bench/bench_load.sh: POST /v1/query with a mix of request bodies.
--
--   wrk … -s bench/load_mix.lua URL -- PERCENT SESSIONS CATALOG_FILE [RANK_FILE]
--
-- CATALOG_FILE and RANK_FILE hold one JSON body per line with the placeholder @SESSION@;
-- SESSIONS is a comma-separated list of session ids, one per wrk thread (round robin), so no
-- session runs more queries at once than its share of the connections. Each thread sends
-- PERCENT requests in 100 from RANK_FILE (cycling through its lines) and the others from
-- CATALOG_FILE, interleaved evenly (a fixed pattern, not random, so runs compare).

local next_thread = 0

function setup(thread)
   thread:set("thread_index", next_thread)
   next_thread = next_thread + 1
end

local function read_lines(path, session)
   local out = {}
   local f = assert(io.open(path, "r"), "cannot open " .. path)
   for line in f:lines() do
      if line ~= "" then
         out[#out + 1] = (line:gsub("@SESSION@", session))
      end
   end
   f:close()
   assert(#out > 0, path .. " has no request body")
   return out
end

local percent, catalog, ranks
local n, ci, ri = 0, 0, 0

function init(args)
   percent = tonumber(args[1]) or 0
   local sessions = {}
   for s in (args[2] or ""):gmatch("[^,]+") do sessions[#sessions + 1] = s end
   assert(#sessions > 0, "no session ids")
   local session = sessions[(thread_index or 0) % #sessions + 1]
   catalog = read_lines(args[3], session)
   ranks = percent > 0 and read_lines(args[4], session) or {}
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   -- Request n is a ranking when the count of rankings due by n grows: PERCENT in every 100.
   n = n + 1
   local body
   if percent > 0 and math.floor(n * percent / 100) > math.floor((n - 1) * percent / 100) then
      ri = ri % #ranks + 1
      body = ranks[ri]
   else
      ci = ci % #catalog + 1
      body = catalog[ci]
   end
   return wrk.format(nil, "/v1/query", nil, body)
end
