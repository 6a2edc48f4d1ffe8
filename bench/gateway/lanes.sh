#!/usr/bin/env bash
# Lanes under load (issue 16): a batch client saturating the upstream's limit through
# `floodgate serve`, and an interactive client sending one request per second through the
# same gateway; what each sees, and what the upstream (`floodgate sim`) saw.
#   bench/gateway/lanes.sh [build dir] [seconds]      (default: build, 180)
# Environment (defaults):
#   RPM=600 TPM=0            the simulator's limits (0: none); the pace interval is 60/RPM s
#                            (or what TPM allows, when tokens bind: the report says which)
#   SIM_LATENCY=fixed:20ms   the simulator's latency per answer
#   SIM_ARGS=                more flags for the simulator (e.g. --window rolling)
#   BATCH_CONNECTIONS=96     the batch client's concurrent connections (closed loop)
#   INTERACTIVE_RATE=1       the interactive client's requests per second (open loop)
#   INTERACTIVE_ARRIVALS=poisson  its send times: a seeded Poisson process, or "even" (every
#                            1/RATE s: at a multiple of the pace interval that meets the
#                            gateway's pacer at one phase only, a biased sample of the wait)
#   WARM=20                  seconds the batch client runs alone first (the steady part is the
#                            interactive client's span, after them)
#   MAX_TOKENS=8             max_tokens of every chat request (the token charge is its prompt + this)
#   GW_LIMITS=0              1: tell the gateway the limits (--rpm/--tpm as given to the
#                            simulator; needs a serve with those flags); 0: it learns them
#                            from the simulator's x-ratelimit headers
#   GW_ARGS=                 more flags for the gateway
#   KEEP=DIR                 keep the clients' records, the ledger, the stats and the access log there
# The batch client (gateway_loadgen batch, lane batch) runs WARM + SECONDS, the interactive
# one (lane interactive) SECONDS, starting after WARM; everything stops by itself and the
# servers (port 0, 127.0.0.1) are killed at exit. Report: bench/gateway/lanes_report.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
seconds="${2:-180}"
rpm="${RPM:-600}"
tpm="${TPM:-0}"
sim_latency="${SIM_LATENCY:-fixed:20ms}"
connections="${BATCH_CONNECTIONS:-96}"
rate="${INTERACTIVE_RATE:-1}"
arrivals="${INTERACTIVE_ARRIVALS:-poisson}"
warm="${WARM:-20}"
max_tokens="${MAX_TOKENS:-8}"
# shellcheck source=bench/gateway/common.sh
source "$here/common.sh"

case "$sim_latency" in
  none) latency_ms=0 ;;
  fixed:*ms) latency_ms="${sim_latency#fixed:}"; latency_ms="${latency_ms%ms}" ;;
  *) latency_ms=0; echo "lanes.sh: SIM_LATENCY=$sim_latency: the client wait is reported as the whole latency" >&2 ;;
esac
limits=(--rpm "$rpm")
[ "$tpm" = 0 ] || limits+=(--tpm "$tpm")
gw_limits=()
[ "${GW_LIMITS:-0}" = 0 ] || gw_limits=("${limits[@]}")

echo "load average before: $(loadavg) ($(nproc) cores)"
# shellcheck disable=SC2086 # SIM_ARGS, GW_ARGS: more flags
start sim sim --port 0 --threads 1 --latency "$sim_latency" --fault-rate 0 --api-key sk-bench-upstream \
  "${limits[@]}" --ledger "$tmp/ledger.jsonl" ${SIM_ARGS:-}
sim="$url"
# shellcheck disable=SC2086
XDG_STATE_HOME="$tmp/state" OPENAI_API_KEY=sk-bench-upstream start gw serve --port 0 --threads 1 --upstream "$sim" \
  --access-log "$tmp/access.log" "${gw_limits[@]}" ${GW_ARGS:-}
gw="$url" gw_pid="$pid"
echo "sim $sim (${limits[*]}, latency $sim_latency), gateway $gw (pid $gw_pid${gw_limits[*]:+, ${gw_limits[*]}}${GW_ARGS:+, $GW_ARGS})"
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarise the report in one line"}],"max_tokens":%s}' \
  "$max_tokens" >"$tmp/batch.json"
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What is the status of my order?"}],"max_tokens":%s}' \
  "$max_tokens" >"$tmp/interactive.json"

"$gen" batch "$gw/chat/completions" "$tmp/batch.json" "$((warm + seconds))" "$connections" "$tmp/batch.jsonl" \
  sk-bench-batch >"$tmp/batch.summary" &
batch_pid=$!
pids+=("$batch_pid")
sleep "$warm"
"$gen" interactive "$gw/chat/completions" "$tmp/interactive.json" "$seconds" "$rate" "$tmp/interactive.jsonl" \
  sk-bench-web "$arrivals" >"$tmp/interactive.summary"
wait "$batch_pid"
echo "load average after: $(loadavg)"
echo "batch:       $(cat "$tmp/batch.summary")"
echo "interactive: $(cat "$tmp/interactive.summary")"
curl -s "${sim%/v1}/_sim/stats" >"$tmp/stats.json"  # also flushes the ledger
echo "gateway: $(curl -s "${gw%/v1}/metrics" | grep -E '^floodgate_gateway_(upstream_responses_total|lane_(admitted|rejected|cancelled)_total)' |
  sed 's/^floodgate_gateway_//' | tr '\n' ' ')"
python3 "$here/lanes_report.py" --batch "$tmp/batch.jsonl" --interactive "$tmp/interactive.jsonl" \
  --ledger "$tmp/ledger.jsonl" --stats "$tmp/stats.json" --seconds "$seconds" --rpm "$rpm" --tpm "$tpm" --sim-latency-ms "$latency_ms"
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$tmp"/*.jsonl "$tmp"/*.json "$tmp/access.log" "$KEEP"/ && echo "kept in $KEEP"; fi
