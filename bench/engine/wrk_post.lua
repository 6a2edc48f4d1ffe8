-- wrk script: the ceiling for the engine benchmark. POSTs one small chat completion body
-- over keep-alive connections, as fast as the server answers.
--   wrk -t2 -c64 -d10s -s bench/engine/wrk_post.lua http://127.0.0.1:PORT/v1/chat/completions
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Say hello to number 1."}]}'

-- No per-response callback: a Lua call per response would slow wrk and lower the ceiling.

done = function(summary, latency, requests)
  io.write(string.format('{"wrk_requests": %d, "wrk_seconds": %.3f, "wrk_requests_per_s": %.1f, "wrk_errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
