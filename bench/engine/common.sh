# Sourced by run.sh, alternate.sh, window.sh and callgrind.sh: the pinning, the scratch folder and the simulator they
# share. Reads SIM_THREADS and PIN (defaults below) and sim_bin; sets sim_pin, client_pin,
# work (removed on exit, with the simulator stopped) and, after start_sim, sim_pid and base;
# stop_sim stops it (flushing its ledger).
me=$(basename "$0")
SIM_THREADS=${SIM_THREADS:-0}
# PIN=1 (the default on 2+ cores): the simulator with one thread on the last core, every
# client on core 0; PIN=0 lets them share all cores.
PIN=${PIN:-$([[ $(nproc) -ge 2 ]] && echo 1 || echo 0)}
sim_pin=()
client_pin=()
if [[ "$PIN" == 1 ]]; then
  command -v taskset > /dev/null || { echo "$me: PIN=1 needs taskset (util-linux)" >&2; exit 2; }
  SIM_THREADS=1
  sim_pin=(taskset -c "$(( $(nproc) - 1 ))")
  client_pin=(taskset -c 0)
fi

work=$(mktemp -d)
sim_pid=""
cleanup() {
  stop_sim
  rm -rf "$work"
}
trap cleanup EXIT

stop_sim() {
  if [[ -n "$sim_pid" ]]; then kill "$sim_pid" 2> /dev/null || true; wait "$sim_pid" 2> /dev/null || true; fi
  sim_pid=""
}

# The simulator: no limits, no faults, latency $SIM_LATENCY (none); extra flags (limits, a
# ledger ...) as arguments. Its base URL is its first line.
start_sim() {
  "${sim_pin[@]}" "$sim_bin" sim --port 0 --latency "${SIM_LATENCY:-none}" --fault-rate 0 --threads "$SIM_THREADS" "$@" > "$work/sim.out" 2> "$work/sim.err" &
  sim_pid=$!
  for _ in $(seq 1 100); do
    [[ -s "$work/sim.out" ]] && break
    sleep 0.1
  done
  base=$(head -n 1 "$work/sim.out")
  [[ "$base" == http* ]] || { echo "$me: the simulator did not start:" >&2; cat "$work/sim.err" >&2; exit 1; }
}
