#!/usr/bin/env bash
# Throughput of `floodgate sim` with limits off, measured with wrk on loopback.
#   bench/sim/run-wrk.sh [path/to/floodgate] [duration]
# Runs: wrk -t2 -c64 (keep-alive) and wrk -t2 -c1000, POSTing a chat completion.
# Prints requests/s and errors of each run; exits 1 if the 1,000-connection run had errors.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../build/apps/floodgate/floodgate}"
duration="${2:-10s}"
command -v wrk >/dev/null || { echo "run-wrk.sh: wrk is not installed (scripts/install-deps)" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

out="$(mktemp)"
"$bin" sim --port 0 ${SIM_ARGS:-} >"$out" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
base="$(head -n1 "$out")"
url="${base}/chat/completions"
echo "simulator: $base (threads: default = $(nproc) cores), limits off, no ledger"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$sim_pid/stat"; }
hz="$(getconf CLK_TCK)"
status=0
for conns in 64 1000; do
  t0="$(cpu_ticks)"
  echo "== wrk -t2 -c$conns -d$duration -s chat.lua $url"
  res="$(wrk -t2 -c"$conns" -d"$duration" --timeout 10s -s "$here/chat.lua" "$url")"
  echo "$res" | grep -E "Requests/sec|Latency|Socket errors|Non-2xx|requests in" || true
  rps="$(echo "$res" | awk '/Requests\/sec/ {print $2}')"
  errs="$(echo "$res" | awk '/Socket errors/ {s=0; for (i=3;i<=NF;i+=2) {gsub(",","",$i); s+=$i}; print s}')"
  non2xx="$(echo "$res" | awk '/Non-2xx/ {print $NF}')"
  total="$(echo "$res" | awk '/requests in/ {print $1}')"
  cpu_s="$(awk -v a="$t0" -v b="$(cpu_ticks)" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')"
  per_cpu="$(awk -v n="$total" -v c="$cpu_s" 'BEGIN {if (c > 0) printf "%.0f", n / c; else print "n/a"}')"
  echo "RESULT c=$conns req/s=$rps socket_errors=${errs:-0} non_2xx=${non2xx:-0} sim_cpu_s=$cpu_s req_per_sim_cpu_s=$per_cpu load=$(cut -d' ' -f1 /proc/loadavg)"
  if [ "$conns" = 1000 ] && { [ "${errs:-0}" != 0 ] || [ "${non2xx:-0}" != 0 ]; }; then status=1; fi
done
exit $status
