#!/usr/bin/env bash
# Instructions per request of two floodgate binaries, alternating, against one simulator:
# (instructions for 3,000 requests - instructions for 500) / 2,500, in total, in the engine's
# own loop (Engine::Impl::run minus the transport's poll, i.e. libcurl) and in poll.
# Load-independent, so it can run on a busy machine (HACKING.md, "Profiling the engine").
#
#   bench/engine/callgrind.sh OLD_BINARY NEW_BINARY [ROUNDS]     # ROUNDS=3 by default
#
# The simulator is NEW's (common.sh's start_sim): limits off, zero latency, no faults.
set -euo pipefail
old=${1:?usage: callgrind.sh OLD_BINARY NEW_BINARY [ROUNDS]}
new=${2:?usage: callgrind.sh OLD_BINARY NEW_BINARY [ROUNDS]}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
sim_bin=$new
PIN=${PIN:-0}  # instruction counts do not need a core each; PIN=1 pins as run.sh does
# shellcheck source=bench/engine/common.sh
source "$here/common.sh"
start_sim
python3 "$here/gen_input.py" 3000 >"$work/in3000.jsonl"
head -500 "$work/in3000.jsonl" >"$work/in500.jsonl"

# inclusive count of the first function whose name matches $2 in profile $1
inclusive() {
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
    grep -E "^ *[0-9,]+ .*$2 \[" | head -1 | awk '{gsub(",", "", $1); print $1}'
}

profile() {  # label binary -> one line: label total engine poll (per request)
  local label=$1 bin=$2 n
  for n in 3000 500; do
    OPENAI_BASE_URL=$base OPENAI_API_KEY=sk-callgrind valgrind --tool=callgrind \
      --callgrind-out-file="$work/$label.$n.out" "$bin" run "$work/in$n.jsonl" \
      -o "$work/out.jsonl" --overwrite --quiet --rpm 10000000 --tpm 10000000000 >/dev/null 2>&1
  done
  local t3 t5 a3 a5 p3 p5
  t3=$(awk '/^summary/ {print $2}' "$work/$label.3000.out")
  t5=$(awk '/^summary/ {print $2}' "$work/$label.500.out")
  a3=$(inclusive "$work/$label.3000.out" 'Impl::run\(\)')
  a5=$(inclusive "$work/$label.500.out" 'Impl::run\(\)')
  p3=$(inclusive "$work/$label.3000.out" 'Transport::poll\(.*\)')
  p5=$(inclusive "$work/$label.500.out" 'Transport::poll\(.*\)')
  python3 -c "
t3,t5,a3,a5,p3,p5=$t3,$t5,$a3,$a5,$p3,$p5
print('%-5s total %6.1fk  engine-own %5.1fk  poll %5.1fk' % ('$label'[:3], (t3-t5)/2500e3,
      ((a3-p3)-(a5-p5))/2500e3, (p3-p5)/2500e3))"
}

for r in $(seq "$rounds"); do
  profile "old$r" "$old"
  profile "new$r" "$new"
done
