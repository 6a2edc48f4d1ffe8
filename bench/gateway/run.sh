#!/usr/bin/env bash
# The gateway's overhead (issue 16): latency added by `floodgate serve` in front of
# `floodgate sim`, and idle keep-alive connections held.
#   bench/gateway/run.sh [build dir] [seconds]        (default: build, 20)
#   GW_ARGS=--no-engine bench/gateway/run.sh ...      (the chat calls through the relay, unpaced)
#   GW_BIN=OTHER/floodgate bench/gateway/run.sh ...    (another build's gateway, the same simulator:
#                                                       alternate two builds to compare them)
# 1. Latency at RATE requests/s (default 1000), open loop (loadgen.cpp), ROUNDS times (default 5):
#    the same chat body POSTed to the sim directly and through the gateway, RATE/s each, their
#    requests interleaved in one run (`loadgen pair`: direct, gateway, direct ... so both see
#    the same moments of the machine's noise); per round p50/p99 of each side, the differences
#    (gateway minus direct) of those percentiles and the gateway's CPU per request
#    (/proc/PID/stat); then the median of each difference over the rounds.
#    MODE=sequential: the way of the numbers before 2026-12-03 16:00: a run straight to the
#    sim, then one through the gateway, per round (their p99s met different noise).
# 2. IDLE (default 10000) keep-alive connections opened to the gateway (one GET /healthz each),
#    held for 10 s: the gateway's RSS before and while they are held, and each still answers.
#    Each round also reads the gateway's own time per call from its /metrics
#    (floodgate_gateway_own_seconds: request read to answer written, less its waits and the
#    upstream's; own_time.py): what the gateway itself adds, without the machine's wake-ups
#    of the three processes around it. An older GW_BIN without that histogram prints none.
#    And the hypervisor's steal over the round (/proc/stat): CPU time the machine wanted and
#    did not get, in bursts that every process meets (this guest's busy/idle ticks are not
#    reliable, so no percentage).
#    PIN=1: the gateway on core 1, the client and the simulator on core 0 (taskset).
# The simulator has no limits, no latency, no faults and no ledger; both servers run one
# event-loop thread (--threads 1). Prints the load average before and after: the machine is shared.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
seconds="${2:-20}"
rate="${RATE:-1000}"
rounds="${ROUNDS:-5}"
mode="${MODE:-interleaved}"
idle="${IDLE:-10000}"
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((idle + 100)) ] || { echo "run.sh: needs $((idle + 100)) file descriptors (ulimit -n)" >&2; exit 2; }

# shellcheck source=bench/gateway/common.sh
source "$here/common.sh"
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"

echo "load average before: $(loadavg) ($(nproc) cores)"
start sim sim --port 0 --threads 1 --latency none --fault-rate 0 --api-key sk-bench-upstream
sim="$url" sim_pid="$pid"
# XDG_STATE_HOME: the usage store's default place (--usage-db) in the scratch folder, not ~/.local/state
# (an older GW_BIN without a usage store ignores it).
# shellcheck disable=SC2086 # GW_ARGS: more flags for the gateway, e.g. --no-engine
XDG_STATE_HOME="$tmp/state" OPENAI_API_KEY=sk-bench-upstream bin="${GW_BIN:-$bin}" start gw serve --port 0 --threads 1 --upstream "$sim" --quiet \
  --interactive-queue 100000 --max-in-flight 1000 ${GW_ARGS:-}
gw="$url" gw_pid="$pid"
if [ "${PIN:-0}" = 1 ]; then
  # One core for the gateway, the other for the client and the simulator: the gateway's
  # added latency without the scheduler handing its core to them (needs 2 cores).
  taskset -a -p -c 1 "$gw_pid" >/dev/null
  taskset -a -p -c 0 "$sim_pid" >/dev/null
  taskset -p -c 0 $$ >/dev/null  # this script, so the load generator it starts
  echo "pinned: gateway on core 1, client and simulator on core 0"
fi
echo "sim $sim (pid $sim_pid), gateway $gw (pid $gw_pid${GW_BIN:+, $GW_BIN})"
printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say something short"}],"max_tokens":8}' >"$tmp/chat.json"

# Warm both up (connections, pools, page faults).
"$gen" rate "$sim/chat/completions" "$tmp/chat.json" "$rate" 2 32 sk-bench-upstream >/dev/null
"$gen" rate "$gw/chat/completions" "$tmp/chat.json" "$rate" 2 32 sk-bench-client >/dev/null
own() { python3 "$here/own_time.py" "$1" "${gw%/v1}/metrics" "$tmp/own.before" 2>/dev/null || true; }
# CPU time the hypervisor gave to others while ours wanted it (/proc/stat's steal), in ticks:
# on a VM it comes in bursts of milliseconds that every process meets, the tails' main cause.
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
for r in $(seq "$rounds"); do
  own save
  s0="$(steal_ticks)"
  t0="$(cpu_ticks "$gw_pid")"
  if [ "$mode" = sequential ]; then
    d="$("$gen" rate "$sim/chat/completions" "$tmp/chat.json" "$rate" "$seconds" 32 sk-bench-upstream)"
    t0="$(cpu_ticks "$gw_pid")"
    g="$("$gen" rate "$gw/chat/completions" "$tmp/chat.json" "$rate" "$seconds" 32 sk-bench-client)"
  else
    both="$("$gen" pair "$sim/chat/completions" sk-bench-upstream "$gw/chat/completions" sk-bench-client \
      "$tmp/chat.json" "$rate" "$seconds" 32)"
    d="$(python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])["a"]))' "$both")"
    g="$(python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])["b"]))' "$both")"
  fi
  t1="$(cpu_ticks "$gw_pid")"
  own_line="$(own since)"
  s1="$(steal_ticks)"
  echo "round $r direct:  $d"
  echo "round $r gateway: $g"
  python3 - "$d" "$g" "$((t1 - t0))" "$hz" <<'PY' | tee -a "$tmp/added"
import json, sys
d, g = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cpu_us = int(sys.argv[3]) / int(sys.argv[4]) * 1e6 / max(1, g['sent'])
print(f"        added: p50 {1000*(g['p50_ms']-d['p50_ms']):.0f} us, p99 {1000*(g['p99_ms']-d['p99_ms']):.0f} us"
      f" (direct p50 {d['p50_ms']:.3f} ms p99 {d['p99_ms']:.3f} ms; gateway p50 {g['p50_ms']:.3f} ms p99 {g['p99_ms']:.3f} ms);"
      f" gateway CPU {cpu_us:.0f} us per request")
PY
  [ -n "$own_line" ] && echo "        $own_line" | tee -a "$tmp/own"
  echo "        steal: $(( (s1 - s0) * 1000 / hz )) ms of CPU time taken by the hypervisor over the round (/proc/stat)"
done
python3 - "$tmp/added" <<'PY'
import re, statistics, sys
rows = [re.search(r"p50 (-?\d+) us, p99 (-?\d+) us", line) for line in open(sys.argv[1])]
p50, p99 = sorted(int(m[1]) for m in rows if m), sorted(int(m[2]) for m in rows if m)
print(f"median over {len(p50)} rounds: added p50 {statistics.median(p50):.0f} us, added p99 {statistics.median(p99):.0f} us"
      f" (p99 from {p99[0]} to {p99[-1]} us)")
PY
if [ -s "$tmp/own" ]; then
  python3 - "$tmp/own" <<'PY'
import re, statistics, sys
rows = [re.search(r"p50 (\d+) us, p99 (\d+) us", line) for line in open(sys.argv[1])]
p50, p99 = sorted(int(m[1]) for m in rows if m), sorted(int(m[2]) for m in rows if m)
print(f"median over {len(p50)} rounds: gateway own time p50 {statistics.median(p50):.0f} us, p99 {statistics.median(p99):.0f} us"
      f" (p99 from {p99[0]} to {p99[-1]} us)")
PY
fi
echo "load average after the latency runs: $(loadavg)"

echo "gateway RSS before idle connections: $(rss_kib "$gw_pid") KiB"
"$gen" idle "${gw%/v1}/healthz" "$idle" 10 >"$tmp/idle.out" &
gen_pid=$!
for _ in $(seq 600); do [ -s "$tmp/idle.out" ] && break; sleep 0.1; done
cat "$tmp/idle.out"
sleep 2
echo "gateway RSS holding them: $(rss_kib "$gw_pid") KiB; metrics: $(curl -s "${gw%/v1}/metrics" | grep '^floodgate_gateway_connections ')"
wait "$gen_pid" && echo "all $idle still answered after 10 s idle" || { cat "$tmp/idle.out"; echo "some idle connections were lost"; }
echo "load average after: $(loadavg)"
