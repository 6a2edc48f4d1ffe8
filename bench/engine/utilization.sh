#!/usr/bin/env bash
# Utilization benchmark (issue 3, benchmark b): how close `floodgate run` finishes to the
# minimum time a rate limit allows, and whether the server ever saw a 60-second window
# over the limit. Three jobs against `floodgate sim` (no latency, no faults):
#   known RPM  : sim --rpm R,  floodgate run --rpm R             (N requests)
#   learned RPM: sim --rpm R,  floodgate run --limits auto       (N requests)
#   known TPM  : sim --tpm T,  floodgate run --tpm T             (N requests of ~TOK tokens)
# The minimum is N / R minutes (N * tokens / T for TPM): paced evenly, a minute's burst is
# not allowed. Ratio = finish time / minimum (target: <= 1.03 with known limits, and
# < 1% of requests answered 429 with learned ones).
#
#   bench/engine/utilization.sh [BUILD_DIR]     env: R=1200 N=600 T=60000 SIM_BIN=...
#                                               ONLY="known_rpm auto_rpm known_tpm" (a subset)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
fg=$(cd "$build" && pwd)/apps/floodgate/floodgate
sim_bin=${SIM_BIN:-$fg}
R=${R:-1200}
N=${N:-600}
T=${T:-60000}
py=/usr/bin/python3

[[ -x "$fg" ]] || { echo "utilization.sh: no floodgate binary at $fg" >&2; exit 2; }
"$fg" run --help > /dev/null 2>&1 || { echo "utilization.sh: this floodgate has no run command yet" >&2; exit 2; }

work=$(mktemp -d)
sim_pid=""
stop_sim() {
  if [[ -n "$sim_pid" ]]; then kill "$sim_pid" 2> /dev/null || true; wait "$sim_pid" 2> /dev/null || true; fi
  sim_pid=""
}
trap 'stop_sim; rm -rf "$work"' EXIT

start_sim() {  # args: extra sim flags
  : > "$work/sim.out"
  "$sim_bin" sim --port 0 --latency none --fault-rate 0 --ledger "$work/ledger.jsonl" "$@" > "$work/sim.out" 2> "$work/sim.err" &
  sim_pid=$!
  for _ in $(seq 1 100); do [[ -s "$work/sim.out" ]] && break; sleep 0.1; done
  base=$(head -n 1 "$work/sim.out")
  [[ "$base" == http* ]] || { echo "simulator did not start" >&2; cat "$work/sim.err" >&2; exit 1; }
}

job() {  # name minimum_seconds sim_flags... -- run_flags...
  local name=$1 minimum=$2
  shift 2
  local sim_flags=() run_flags=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do sim_flags+=("$1"); shift; done
  shift
  run_flags=("$@")
  [[ " ${ONLY:-known_rpm auto_rpm known_tpm} " == *" $name "* ]] || return 0
  start_sim "${sim_flags[@]}"
  local start end
  start=$(date +%s.%N)
  OPENAI_BASE_URL="$base" OPENAI_API_KEY=sk-bench "$fg" run "$work/input.jsonl" -o "$work/out_$name.jsonl" --overwrite --quiet \
    "${run_flags[@]}" > "$work/run_$name.log" 2>&1 || echo "  (floodgate run exited $?)"
  end=$(date +%s.%N)
  stop_sim  # flushes the ledger
  local stats
  stats=$("$py" "$here/ledger_windows.py" "$work/ledger.jsonl" --rpm "${LIMIT_RPM:-0}" --tpm "${LIMIT_TPM:-0}")
  if [[ "$minimum" == tokens ]]; then  # the server's own token count of the successful requests
    minimum=$("$py" -c "import json,sys; print(sum(json.loads(l).get('tokens_charged') or 0 for l in open(sys.argv[1]) if l.strip() and json.loads(l).get('status') == 200) / float(sys.argv[2]) * 60)" "$work/ledger.jsonl" "$LIMIT_TPM")
  fi
  awk -v n="$name" -v s="$start" -v e="$end" -v m="$minimum" -v st="$stats" 'BEGIN {
    printf "%-12s finish %7.2f s   minimum %7.2f s   ratio %.3f   server: %s\n", n, e - s, m, (e - s) / m, st }'
}

"$py" "$here/gen_input.py" "$N" --max-tokens 16 > "$work/input.jsonl"
min_rpm=$(awk -v n="$N" -v r="$R" 'BEGIN { print n / r * 60 }')
echo "N=$N  R=$R rpm  T=$T tpm  cores=$(nproc)"
LIMIT_RPM=$R job known_rpm "$min_rpm" --rpm "$R" -- --rpm "$R"
LIMIT_RPM=$R job auto_rpm "$min_rpm" --rpm "$R" -- --limits auto

# TPM-bound: the server charges each request about prompt + max_tokens tokens; the minimum
# is the server's own count (from its ledger) divided by T.
LIMIT_TPM=$T job known_tpm tokens --tpm "$T" -- --tpm "$T"
