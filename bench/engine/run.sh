#!/usr/bin/env bash
# Engine overhead benchmark (issue 3, benchmark a): requests/s of `floodgate run` against the
# simulator with no limits and no latency, side by side with wrk on the same endpoint (the
# ceiling) and with an asyncio + aiohttp + semaphore script (the approach users have
# today), measured in one run, with the ratios.
#
#   bench/engine/run.sh [BUILD_DIR]           (default build/)
#   env: N=100000 requests per client (start-up then weighs ~2%), C=64 concurrency, DURATION=10s for wrk,
#        FLOODGATE_RUN_ARGS extra flags for `floodgate run` (default: --quiet),
#        RSS_LINES=1000000 to also measure floodgate run's peak RSS on that many lines
#        (0 = skip, the default); SIM_BIN another binary to run `sim` with (default: the same);
#        SIM_THREADS the simulator's threads (default 0 = one per core; 1 leaves a core to the client),
#        PIN=1 (the default on 2+ cores) gives each side a core of its own: the simulator runs with
#        one thread on the last core, every client (wrk, Python, floodgate) on core 0; PIN=0 lets
#        them share all cores (then a client that uses less CPU leaves more of it to the server).
# Needs: wrk, /usr/bin/time, Debian's /usr/bin/python3 with python3-aiohttp.
# Targets (issue 3): floodgate >= 10,000 req/s, >= 2x the Python script, >= 0.6x wrk.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
fg=$(cd "$build" && pwd)/apps/floodgate/floodgate
N=${N:-100000}
C=${C:-64}
DURATION=${DURATION:-10s}
RSS_LINES=${RSS_LINES:-0}
py=/usr/bin/python3
sim_bin=${SIM_BIN:-$fg}

[[ -x "$fg" ]] || { echo "run.sh: no floodgate binary at $fg (build first)" >&2; exit 2; }
command -v wrk > /dev/null || { echo "run.sh: wrk is not installed (scripts/install-deps)" >&2; exit 2; }
"$py" -c "import aiohttp" 2> /dev/null || { echo "run.sh: $py has no aiohttp (apt-get install python3-aiohttp)" >&2; exit 2; }

# shellcheck source=bench/engine/common.sh
source "$here/common.sh"
start_sim
echo "simulator: $base   N=$N  C=$C  cores=$(nproc)  pinned=$PIN (simulator threads: $SIM_THREADS)"

"$py" "$here/gen_input.py" "$N" > "$work/input.jsonl"

# The simulator's CPU time so far, in ms (utime + stime from /proc, clock ticks of 10 ms):
# how much of the two cores the server itself took while each client ran.
sim_cpu_ms() { awk '{ print ($14 + $15) * 10 }' "/proc/$sim_pid/stat"; }

# 1. wrk: the ceiling.
c0=$(sim_cpu_ms)
wrk_out=$("${client_pin[@]}" wrk -t2 -c"$C" -d"$DURATION" -s "$here/wrk_post.lua" "$base/chat/completions")
wrk_rps=$(echo "$wrk_out" | sed -n 's/.*"wrk_requests_per_s": \([0-9.]*\).*/\1/p')
wrk_n=$(echo "$wrk_out" | sed -n 's/.*"wrk_requests": \([0-9]*\).*/\1/p')
echo "wrk:              ${wrk_rps} req/s   (simulator: $(awk -v c="$(( $(sim_cpu_ms) - c0 ))" -v n="$wrk_n" 'BEGIN { printf "%.1f", c * 1000 / n }') us CPU per request)"

# 2. asyncio + aiohttp + semaphore.
py_json=$("${client_pin[@]}" "$py" "$here/peer_aiohttp.py" "$work/input.jsonl" "$work/out_py.jsonl" --base-url "$base" --concurrency "$C" || true)
py_rps=$(echo "$py_json" | sed -n 's/.*"requests_per_s": \([0-9.]*\).*/\1/p')
echo "python aiohttp:   ${py_rps} req/s   ($py_json)"

# 3. floodgate run, once it exists.
fg_rps=""
if "$fg" run --help > /dev/null 2>&1; then
  c0=$(sim_cpu_ms)
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  OPENAI_BASE_URL="$base" OPENAI_API_KEY=sk-bench "${client_pin[@]}" /usr/bin/time -f '%M %U %S' -o "$work/fg.rss" \
    "$fg" run "$work/input.jsonl" -o "$work/out_fg.jsonl" --max-in-flight "$C" ${FLOODGATE_RUN_ARGS:---quiet} \
    > "$work/fg.log" 2>&1 || { echo "floodgate run failed:"; tail -n 20 "$work/fg.log"; }
  end=$(date +%s.%N)
  lines=$(wc -l < "$work/out_fg.jsonl" 2> /dev/null || echo 0)
  fg_rps=$(awk -v n="$N" -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", n / (e - s) }')
  read -r fg_rss fg_user fg_sys < "$work/fg.rss"
  sim_us=$(awk -v c="$(( $(sim_cpu_ms) - c0 ))" -v n="$N" 'BEGIN { printf "%.1f", c * 1000 / n }')
  fg_cpu_us=$(awk -v n="$N" -v u="$fg_user" -v s="$fg_sys" 'BEGIN { printf "%.1f", (u + s) * 1e6 / n }')
  echo "floodgate run:    ${fg_rps} req/s   (output lines: $lines of $N, peak RSS ${fg_rss} KB, ${fg_cpu_us} us CPU per request, simulator ${sim_us} us; wall time incl. start-up)"
else
  echo "floodgate run:    (no 'run' command in this build yet: skipped)"
fi

if [[ -n "$fg_rps" && -n "$wrk_rps" && -n "$py_rps" ]]; then
  awk -v f="$fg_rps" -v w="$wrk_rps" -v p="$py_rps" 'BEGIN {
    printf "ratios: floodgate/wrk = %.2f (target >= 0.6)   floodgate/python = %.2f (target >= 2)\n", f / w, f / p }'
fi

# Optional: peak RSS of floodgate run on a large input (target < 100 MB for 1,000,000 lines).
if [[ "$RSS_LINES" -gt 0 ]] && "$fg" run --help > /dev/null 2>&1; then
  "$py" "$here/gen_input.py" "$RSS_LINES" > "$work/big.jsonl"
  # shellcheck disable=SC2086
  OPENAI_BASE_URL="$base" OPENAI_API_KEY=sk-bench /usr/bin/time -f '%M %e' -o "$work/big.time" \
    "$fg" run "$work/big.jsonl" -o "$work/out_big.jsonl" --max-in-flight "$C" ${FLOODGATE_RUN_ARGS:---quiet} \
    > "$work/big.log" 2>&1 || { echo "floodgate run (big) failed:"; tail -n 20 "$work/big.log"; }
  read -r rss_kb secs < "$work/big.time"
  echo "peak RSS for $RSS_LINES lines: $((rss_kb / 1024)) MB in ${secs} s"
fi
