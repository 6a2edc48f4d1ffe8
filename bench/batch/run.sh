#!/bin/sh
# The Batch API client against `floodgate sim`'s Batch API (bench/README.md, "Batch"):
#   (a) a 100,000-line chat input split (50,000 lines and the enqueued-token limit per
#       file), uploaded, run, fetched and merged back: each custom_id exactly once; wall
#       time and peak RSS of `floodgate batch run`;
#   (b) `floodgate batch fetch` of a ~200 MB output (embeddings): peak RSS while streaming;
#   (c) the same fetch into a SQLite results table (run's sink): peak RSS.
# Usage: bench/batch/run.sh [BUILD_DIR]   (LINES=100000 EMBED_LINES=6500 QUEUE=1000000)
set -eu
BUILD=${1:-build}
BIN=$(cd "$BUILD" && pwd)/apps/floodgate/floodgate
LINES=${LINES:-100000}
EMBED_LINES=${EMBED_LINES:-6500}
QUEUE=${QUEUE:-1000000}
WORK=$(mktemp -d /tmp/fg_bench_batch.XXXXXX)
SIM_PID=
cleanup() {
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

start_sim() {  # start_sim ARGS...: sets SIM_URL, SIM_PID
  rm -f "$WORK/sim.out"
  "$BIN" sim --port 0 --threads 1 --api-key sk-bench --ledger "$WORK/ledger.jsonl" --batch-dir "$WORK/simfiles" "$@" \
    >"$WORK/sim.out" 2>"$WORK/sim.err" &
  SIM_PID=$!
  i=0
  while ! grep -q http "$WORK/sim.out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  SIM_URL=$(head -1 "$WORK/sim.out")
}
stop_sim() { kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=; }

# Peak RSS (KiB) and wall seconds from a /usr/bin/time -v log.
report() {
  awk -F': ' '/Maximum resident set size/ {rss=$2} /Elapsed \(wall clock\)/ {wall=$2} END {printf "peak RSS %.1f MiB, wall %s\n", rss/1024, wall}' "$1"
}

echo "== (a) $LINES chat lines through the Batch API (enqueued-token limit $QUEUE)"
python3 - "$WORK/in.jsonl" "$LINES" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"summarise item {i} in one word"}], "max_tokens": 8}
        f.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}, separators=(",", ":")) + "\n")
PY
start_sim --batch-speed 1000000 --batch-queue-limit "gpt-4o-mini=$QUEUE"
OPENAI_API_KEY=sk-bench /usr/bin/time -v "$BIN" batch run "$WORK/in.jsonl" -o "$WORK/out.jsonl" --base-url "$SIM_URL" \
  --queue-limit "gpt-4o-mini=$QUEUE" --poll-interval 100ms --poll-max 500ms 2>"$WORK/a.time" >/dev/null || { tail -20 "$WORK/a.time"; exit 1; }
grep '^batch: .*created\|^batch: .*lines in' "$WORK/a.time" || true
report "$WORK/a.time"
python3 - "$WORK/out.jsonl" "$LINES" "$WORK/ledger.jsonl" <<'PY'
import json, sys, collections
ids = collections.Counter()
ok = 0
for line in open(sys.argv[1]):
    j = json.loads(line)
    ids[j["custom_id"]] += 1
    ok += j["error"] is None
n = int(sys.argv[2])
dup = sum(1 for c in ids.values() if c > 1)
uploads = creates = lines = 0
for line in open(sys.argv[3]):
    e = json.loads(line)
    uploads += e["method"] == "POST" and e["path"] == "/v1/files" and e["status"] == 200
    creates += e["method"] == "POST" and e["path"] == "/v1/batches" and e["status"] == 200
    lines += "batch_id" in e
print(f"output: {sum(ids.values())} lines, {len(ids)} distinct custom_ids (of {n}), {dup} duplicated, {ok} successes")
print(f"sim ledger: {uploads} uploads, {creates} batches, {lines} batch lines answered")
assert len(ids) == n and dup == 0 and ok == n and lines == n
PY
stop_sim

echo "== (b) fetch of a large output ($EMBED_LINES embedding lines of 1536 floats)"
python3 - "$WORK/emb.jsonl" "$EMBED_LINES" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        body = {"model": "text-embedding-3-small", "input": f"document number {i}"}
        f.write(json.dumps({"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings", "body": body}, separators=(",", ":")) + "\n")
PY
start_sim --batch-speed 1000000
OPENAI_API_KEY=sk-bench "$BIN" batch submit "$WORK/emb.jsonl" -o "$WORK/emb.out.jsonl" --base-url "$SIM_URL" --quiet
OPENAI_API_KEY=sk-bench "$BIN" batch wait -o "$WORK/emb.out.jsonl" --base-url "$SIM_URL" --poll-interval 100ms --quiet
size=$(du -b "$WORK"/simfiles/file-* | sort -n | tail -1 | cut -f1)
echo "largest file on the simulator (the output file): $size bytes"
OPENAI_API_KEY=sk-bench /usr/bin/time -v "$BIN" batch fetch -o "$WORK/emb.out.jsonl" --base-url "$SIM_URL" 2>"$WORK/b.time" >/dev/null || grep -v "^\s" "$WORK/b.time" | tail -3
report "$WORK/b.time"
echo "merged output: $(wc -l <"$WORK/emb.out.jsonl") lines, $(du -b "$WORK/emb.out.jsonl" | cut -f1) bytes"

echo "== (c) the same fetch into a SQLite results table (run's sink; the JSONL beside it)"
OPENAI_API_KEY=sk-bench "$BIN" batch submit "$WORK/emb.jsonl" -o "$WORK/emb.out.sqlite" --base-url "$SIM_URL" --quiet
OPENAI_API_KEY=sk-bench "$BIN" batch wait -o "$WORK/emb.out.sqlite" --base-url "$SIM_URL" --poll-interval 100ms --quiet
OPENAI_API_KEY=sk-bench /usr/bin/time -v "$BIN" batch fetch -o "$WORK/emb.out.sqlite" --base-url "$SIM_URL" 2>"$WORK/c.time" >/dev/null || grep -v "^\s" "$WORK/c.time" | tail -3
report "$WORK/c.time"
python3 - "$WORK/emb.out.sqlite" "$EMBED_LINES" <<'PY'
import sqlite3, sys
n, distinct, ok = sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*), count(DISTINCT custom_id), sum(status = 'ok') FROM results").fetchone()
print(f"results table: {n} rows, {distinct} distinct custom_ids, {ok} ok")
assert n == distinct == ok == int(sys.argv[2])
PY
stop_sim
