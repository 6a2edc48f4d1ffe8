# shellcheck shell=bash disable=SC2154 # $build is the sourcing script's; $p is the trap's own
# Sourced by run.sh and lanes.sh: the scratch folder, the processes they start (stopped at
# exit) and how they start them. Reads $build (the build folder); sets $bin (floodgate) and
# $gen (the load generator, loadgen.cpp).
bin="$build/apps/floodgate/floodgate"
gen="$build/bench/gateway/gateway_loadgen"
if [ ! -x "$bin" ] || [ ! -x "$gen" ]; then
  echo "$(basename "$0"): build the targets floodgate_cli and gateway_loadgen in $build first" >&2
  exit 2
fi
tmp="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
start() {  # name args...: starts floodgate, waits for its URL; sets $url and $pid
  local name="$1"; shift
  "$bin" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do [ -s "$tmp/$name.out" ] && break; sleep 0.05; done
  url="$(head -n1 "$tmp/$name.out")"
  [ -n "$url" ] || { echo "$(basename "$0"): $name did not start: $(cat "$tmp/$name.err")" >&2; exit 1; }
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
