#!/usr/bin/env bash
# Memory of 50 concurrent 10 MB uploads (issue 5, benchmark a): peak RSS of
# `floodgate transcribe` (from /usr/bin/time -v) beside the bytes it uploaded, and two
# asyncio + aiohttp peers measured in the same run with Debian's /usr/bin/python3:
# one reads each file whole before uploading, one hands aiohttp the open file.
#
#   bench/audio/run-memory.sh [BUILD_DIR]     (default build/)
#   env: FILES=50 MB=10 INFLIGHT=50 LATENCY=fixed:2s (the sim holds each answer so all
#        uploads are in flight together), KEEP=dir to keep the generated files
# Target (issue 5): floodgate < 24 MB peak RSS, below both peers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
fg=$(cd "$build" && pwd)/apps/floodgate/floodgate
py=/usr/bin/python3
FILES=${FILES:-50}
MB=${MB:-10}
INFLIGHT=${INFLIGHT:-50}
LATENCY=${LATENCY:-fixed:2s}
[[ -x "$fg" ]] || { echo "run-memory.sh: no floodgate binary at $fg (build first)" >&2; exit 2; }
"$py" -c "import aiohttp" 2> /dev/null || { echo "run-memory.sh: $py has no aiohttp (apt-get install python3-aiohttp)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "run-memory.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

work=${KEEP:-$(mktemp -d)}
mkdir -p "$work/audio"
sim_pid=""
stop_sim() {
  if [[ -n "$sim_pid" ]]; then kill "$sim_pid" 2> /dev/null || true; wait "$sim_pid" 2> /dev/null || true; sim_pid=""; fi
}
cleanup() { stop_sim; [[ -n "${KEEP:-}" ]] || rm -rf "$work"; }
trap cleanup EXIT

# FILES WAVs of MB megabytes each (16 kHz mono 16-bit: 32,000 bytes per second, so 10 MB is
# 328 s: under the 600 s chunk length, each file is one upload).
seconds=$(awk -v mb="$MB" 'BEGIN { printf "%.3f", mb * 1000000 / 32000 }')
for i in $(seq 1 "$FILES"); do
  f="$work/audio/file-$(printf %03d "$i").wav"
  [[ -s "$f" ]] || sox -n -r 16000 -c 1 -b 16 "$f" synth "$seconds" sine $((200 + 7 * i)) vol 0.3
done
total_mb=$(du -sm "$work/audio" | cut -f1)

start_sim() {
  rm -f "$work/ledger.jsonl" "$work/sim.out"
  "$fg" sim --port 0 --latency "$LATENCY" --ledger "$work/ledger.jsonl" > "$work/sim.out" 2> "$work/sim.err" &
  sim_pid=$!
  for _ in $(seq 1 100); do [[ -s "$work/sim.out" ]] && break; sleep 0.1; done
  base=$(head -n 1 "$work/sim.out")
  [[ "$base" == http* ]] || { echo "run-memory.sh: the simulator did not start" >&2; cat "$work/sim.err" >&2; exit 1; }
}
uploaded() {  # bytes the sim received in multipart bodies, and requests answered 200
  stop_sim
  "$py" -c '
import json, sys
n = b = 0
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("path") == "/v1/audio/transcriptions" and j.get("status") == 200:
        n += 1; b += j.get("upload_bytes", 0)
print(f"{n} uploads, {b} bytes")' "$work/ledger.jsonl"
}
peak_mib() { sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1" | awk '{ printf "%.1f", $1 / 1024 }'; }
wall_s() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): \(.*\)/\1/p' "$1"; }

echo "$FILES files of $MB MB ($total_mb MiB in all), $INFLIGHT in flight, sim latency $LATENCY, cores=$(nproc)"

# Runs "$@" under /usr/bin/time -v (report in $1) with tree_rss.py sampling the process tree
# beside it (JSON in $1.tree): ru_maxrss is the peak of the largest single process, the
# sampler says whether processes of the tree were big at the same time.
measured() {
  local report=$1
  shift
  /usr/bin/time -v "$@" 2> "$report" &
  local pid=$!
  "$py" "$here/tree_rss.py" "$pid" 10 --without-root > "$report.tree" &
  local sampler=$!
  local rc=0
  wait "$pid" || rc=$?
  wait "$sampler" || true
  [[ $rc == 0 ]] || { cat "$report" >&2; exit 1; }
}
tree_mib() { "$py" "$here/tree_rss.py" --summary "$1"; }  # the sampled simultaneous peak, per-process peaks

start_sim
rm -rf "$work/out"
measured "$work/time-fg.txt" "$fg" transcribe "$work/audio" -o "$work/out" --base-url "$base" --api-key sk-bench \
  --max-in-flight "$INFLIGHT" --quiet
fg_up=$(uploaded)
echo "floodgate transcribe:           peak RSS $(peak_mib "$work/time-fg.txt") MiB, wall $(wall_s "$work/time-fg.txt"), $fg_up"
echo "  of which, per process (getrusage):$(sed -n 's/.*\(peak RSS [0-9.]* MiB (audio helper [0-9.]* MiB)\).*/ \1/p' "$work/time-fg.txt")"
echo "  whole tree, sampled every 10 ms: $(tree_mib "$work/time-fg.txt.tree")"

# One Python peer against a fresh simulator: MODE (whole|file) and the label to print.
peer() {
  local mode=$1 label=$2
  start_sim
  measured "$work/time-$mode.txt" "$py" "$here/peer_upload.py" "$work/audio" --base-url "$base" --concurrency "$INFLIGHT" \
    --mode "$mode" > "$work/py-$mode.json"
  echo "$label peak RSS $(peak_mib "$work/time-$mode.txt") MiB, wall $(wall_s "$work/time-$mode.txt"), $(uploaded)"
  echo "  whole tree, sampled every 10 ms: $(tree_mib "$work/time-$mode.txt.tree")"
}
peer whole "python aiohttp, file read whole:"
peer file "python aiohttp, open file:      "
