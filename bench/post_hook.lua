-- wrk script: POST the same signed webhook payload again and again, as
-- mailqueue does, then print a machine-readable summary line.
local body = io.open(os.getenv("MQ_BODY")):read("*a")
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["svix-id"] = "0190a6f1-0000-7000-8000-000000000000"
wrk.headers["svix-timestamp"] = os.getenv("MQ_TIMESTAMP")
wrk.headers["svix-signature"] = os.getenv("MQ_SIGNATURE")

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT requests=%d seconds=%.2f rate=%.0f non2xx=%d\n",
    summary.requests, secs, summary.requests / secs, summary.errors.status))
end
