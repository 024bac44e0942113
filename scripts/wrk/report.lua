-- The end-of-run report both wrk scripts print, in the lines scripts/bench-wrk reads.
function done(summary, latency, requests)
  io.write(string.format("non-2xx/3xx: %d\n", summary.errors.status))
  for _, p in pairs({ 50, 95, 99 }) do
    io.write(string.format("p%d ms: %.2f\n", p, latency:percentile(p) / 1000))
  end
end
