-- wrk script of scripts/bench-web: every request takes the next path of the file named
-- by PATHS_FILE (one path a line, cycled; each thread starts at its own offset) and
-- carries the header in AUTH_HEADER ("Name: value"). At the end it prints one JSON
-- line: requests, answers >= 400 (wrk counts those), socket errors and latency
-- percentiles in ms.

local paths = {}
local header_name, header_value

local function load()
    for line in io.lines(os.getenv("PATHS_FILE")) do
        if #line > 0 then paths[#paths + 1] = line end
    end
    local h = os.getenv("AUTH_HEADER") or ""
    header_name, header_value = h:match("^([^:]+):%s*(.*)$")
end

local counter = 0
local threads = {}

function setup(thread)
    counter = counter + 1
    thread:set("offset", counter * 7919)
    table.insert(threads, thread)
end

function init(args)
    load()
    i = offset or 0
end

function request()
    i = i + 1
    local path = paths[(i % #paths) + 1]
    local headers = {}
    if header_name then headers[header_name] = header_value end
    return wrk.format("GET", path, headers)
end

function done(summary, latency, requests)
    local e = summary.errors
    local ms = function(p) return latency:percentile(p) / 1000 end
    io.write(string.format(
        '{"requests":%d,"seconds":%.2f,"rps":%.1f,"status_errors":%d,"socket_errors":%d,' ..
        '"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        summary.errors.status, e.connect + e.read + e.write + e.timeout,
        ms(50), ms(90), ms(99), latency.max / 1000))
end
