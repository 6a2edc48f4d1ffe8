#!/usr/bin/env bash
# examples/embed, built against the INSTALLED package, against `floodgate sim` started here
# on port 0 (loopback): 1,000 requests in, 1,000 outcomes out, each once and a success, and
# the simulator's ledger holds 1,000 requests (each sent once). The key never shows in
# embed's output.
# Usage: run_embed.sh FLOODGATE_BIN EMBED_BIN WORK_DIR
set -euo pipefail
fg=$1 embed=$2 dir=$3
key=sk-test-install-embed
rm -rf "$dir"
mkdir -p "$dir"
mkfifo "$dir/sim.stdout"
"$fg" sim --host 127.0.0.1 --port 0 --api-key "$key" --ledger "$dir/ledger.jsonl" >"$dir/sim.stdout" 2>"$dir/sim.err" &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true' EXIT
exec 3<"$dir/sim.stdout"  # kept open: the simulator never writes to a closed pipe
if ! read -r -t 10 base <&3; then
  echo "the simulator printed no base URL within 10 s: $(cat "$dir/sim.err")" >&2
  exit 1
fi

status=0
env -u OPENAI_BASE_URL OPENAI_API_KEY="$key" "$embed" "$base" >"$dir/embed.out" 2>"$dir/embed.err" || status=$?
kill -TERM "$sim"
wait "$sim" || true
trap - EXIT
cat "$dir/embed.out"
if [ "$status" -ne 0 ]; then
  echo "embed exited with $status: $(cat "$dir/embed.err")" >&2
  exit 1
fi
if ! grep -q '^submitted=1000 outcomes=1000 once=1000 ok=1000 ' "$dir/embed.out"; then
  echo "embed did not get 1,000 successes, once each" >&2
  exit 1
fi
if grep -q -- "$key" "$dir/embed.out" "$dir/embed.err"; then
  echo "the API key was printed" >&2
  exit 1
fi
sent=$(wc -l <"$dir/ledger.jsonl")
if [ "$sent" -ne 1000 ]; then
  echo "the simulator's ledger holds $sent requests, not 1000" >&2
  exit 1
fi
