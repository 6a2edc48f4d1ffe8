#!/usr/bin/env bash
# Old against new, fairly, on a noisy shared machine: one simulator, then ROUNDS rounds of
# (wrk for WRK_SECONDS, then each floodgate binary given on N requests), printing each
# binary's requests/s, its ratio to the wrk run just before, and its CPU per request.
#
#   bench/engine/alternate.sh BIN_A [BIN_B ...]      e.g. build/apps/floodgate/floodgate /tmp/old/floodgate
#   env: ROUNDS=5 N=100000 C=64 WRK_SECONDS=4 SIM_THREADS=0 SIM_BIN (default BIN_A),
#        PIN=1 (the default on 2+ cores): simulator with one thread on the last core, wrk and
#        floodgate on core 0, as in run.sh; PIN=0 lets everything share the cores.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[[ $# -ge 1 ]] || { echo "usage: $0 FLOODGATE_BIN [FLOODGATE_BIN ...]" >&2; exit 2; }
ROUNDS=${ROUNDS:-5}
N=${N:-100000}
C=${C:-64}
WRK_SECONDS=${WRK_SECONDS:-4}
sim_bin=${SIM_BIN:-$1}
command -v wrk > /dev/null || { echo "alternate.sh: wrk is not installed (scripts/install-deps)" >&2; exit 2; }

# shellcheck source=bench/engine/common.sh
source "$here/common.sh"
start_sim
/usr/bin/python3 "$here/gen_input.py" "$N" > "$work/in.jsonl"
echo "simulator $base (threads $SIM_THREADS, pinned $PIN), N=$N, C=$C, $ROUNDS rounds, load $(cut -d' ' -f1 /proc/loadavg)"

for round in $(seq 1 "$ROUNDS"); do
  wrk_rps=$("${client_pin[@]}" wrk -t2 -c"$C" -d"${WRK_SECONDS}s" -s "$here/wrk_post.lua" "$base/chat/completions" |
    sed -n 's/.*"wrk_requests_per_s": \([0-9.]*\).*/\1/p')
  for bin in "$@"; do
    rm -f "$work"/out.jsonl*
    start=$(date +%s.%N)
    OPENAI_BASE_URL="$base" OPENAI_API_KEY=sk-bench "${client_pin[@]}" /usr/bin/time -f '%U %S' -o "$work/time" \
      "$bin" run "$work/in.jsonl" -o "$work/out.jsonl" --max-in-flight "$C" --quiet > /dev/null 2>&1
    end=$(date +%s.%N)
    read -r user sys < "$work/time"
    awk -v r="$round" -v b="$bin" -v w="$wrk_rps" -v s="$start" -v e="$end" -v u="$user" -v y="$sys" -v n="$N" 'BEGIN {
      rps = n / (e - s); printf "round %d  wrk %.0f  %s: %.0f req/s  ratio %.2f  %.1f us CPU per request\n", r, w, b, rps, rps / w, (u + y) * 1e6 / n }'
  done
done
