#!/usr/bin/env python3
"""The lanes-under-load benchmark's report (bench/gateway/lanes.sh), from what its runs left:

    lanes_report.py --batch BATCH.jsonl --interactive INTERACTIVE.jsonl --ledger LEDGER.jsonl \
        --stats SIM_STATS.json --seconds S --rpm R [--tpm T] [--sim-latency-ms L]

BATCH/INTERACTIVE.jsonl: one line per answered request from `gateway_loadgen batch|interactive`
(sent_ns, done_ns on the steady clock, status, the answer's x-floodgate-lane and
x-floodgate-queue-ms). LEDGER: `floodgate sim --ledger`; its admitted_ms is the same steady
clock (CLOCK_MONOTONIC), so its admissions can be cut to the interactive client's span.
SIM_STATS: `GET /_sim/stats` at the end.

- interactive: the gateway's queue wait (x-floodgate-queue-ms: the lane's wait only, not the
  wait inside the engine's pacer) and the client-side latency (scheduled send to answer,
  the simulator's --latency included; "wait" is that less the simulator's latency),
  p50/p99/max in ms and in pace intervals (60/R s; 60/(T/tokens per request) when tokens bind);
- batch: answered 200s per minute over the steady part (the interactive client's span) as a
  fraction of the limit, and the upstream's admissions (both lanes) per minute there;
- 429s seen by each client, 429s the simulator answered (the gateway's upstream 429s);
- the most requests and tokens over any 60-second window of the ledger, against the limits,
  and the most requests in any 1 s (how evenly the upstream was used).
Prints the report, then one JSON line with every figure. Standard library only.
"""
import argparse
import json
import os
import sys


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "utilization"))
import ledger_windows  # noqa: E402  bench/utilization/ledger_windows.py: the sliding-window maxima


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def percentile(values, p):
    """Nearest-rank on the sorted values (as loadgen.cpp): v[floor(p * (n - 1))]."""
    if not values:
        return None
    v = sorted(values)
    return v[int(p * (len(v) - 1))]


def spread(values):
    return {"n": len(values), "p50": percentile(values, 0.5), "p90": percentile(values, 0.9),
            "p95": percentile(values, 0.95), "p99": percentile(values, 0.99), "max": max(values) if values else None}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", required=True)
    p.add_argument("--interactive", required=True)
    p.add_argument("--ledger", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--rpm", type=float, required=True)
    p.add_argument("--tpm", type=float, default=0)
    p.add_argument("--sim-latency-ms", type=float, default=0)
    p.add_argument("--seconds", type=float, required=True, help="how long the interactive client sent")
    a = p.parse_args()

    batch, inter, ledger = read_jsonl(a.batch), read_jsonl(a.interactive), read_jsonl(a.ledger)
    with open(a.stats, encoding="utf-8") as f:
        stats = json.load(f)
    admitted = [r for r in ledger if r.get("admitted")]
    tokens_per_request = (sum(r.get("tokens_charged") or 0 for r in admitted) / len(admitted)) if admitted else 0
    # What binds: the smaller of the two limits in requests per minute.
    by_tokens = a.tpm / tokens_per_request if a.tpm and tokens_per_request else float("inf")
    limit_rpm = min(a.rpm or float("inf"), by_tokens)
    binding = "tokens" if by_tokens < (a.rpm or float("inf")) else "requests"
    interval_ms = 60_000 / limit_rpm

    ok_inter = [r for r in inter if r["status"] == 200]
    queue = [r["queue_ms"] for r in ok_inter if r["queue_ms"] >= 0]
    latency = [(r["done_ns"] - r["sent_ns"]) / 1e6 for r in ok_inter]
    wait = [x - a.sim_latency_ms for x in latency]
    latency_all = [(r["done_ns"] - r["sent_ns"]) / 1e6 for r in inter]  # refusals (429 at the lane's wait) too
    wrong_lane = sum(1 for r in ok_inter if r["lane"] != "interactive") + sum(1 for r in batch if r["status"] == 200 and r["lane"] != "batch")

    # The steady part: the interactive client's span, its --seconds from its first send (the
    # batch client stops then; late interactive answers are not in it).
    sends = sorted(r["sent_ns"] for r in inter)
    span = (sends[0], sends[0] + int(a.seconds * 1e9)) if sends else (0, 0)
    minutes = (span[1] - span[0]) / 60e9
    batch_ok = sum(1 for r in batch if r["status"] == 200 and span[0] <= r["done_ns"] <= span[1])
    up = [r for r in admitted if span[0] <= r["admitted_ms"] * 1e6 <= span[1]]
    batch_rpm = batch_ok / minutes if minutes else 0
    upstream_rpm = len(up) / minutes if minutes else 0
    upstream_tpm = sum(r.get("tokens_charged") or 0 for r in up) / minutes if minutes else 0

    # Where the tail comes from: the interactive requests that waited over 2 intervals (when,
    # in s from the interactive client's start), and the upstream's longest pause.
    slow_at = [round((r["sent_ns"] - span[0]) / 1e9) for r in ok_inter
               if (r["done_ns"] - r["sent_ns"]) / 1e6 - a.sim_latency_ms > 2 * interval_ms]
    times = sorted(r["admitted_ms"] for r in up)
    gap, gap_at = max(((b - t, t) for t, b in zip(times, times[1:])), default=(0, span[0] / 1e6))

    windows = ledger_windows.windows(ledger)
    max_requests = max((m["max_requests"] for m in windows.values()), default=0)
    max_tokens = max((m["max_tokens"] for m in windows.values()), default=0)
    # How evenly: the most admissions in any 1 s (an even pace holds about limit/60).
    max_1s = max((m["max_requests"] for m in ledger_windows.windows(ledger, 1000).values()), default=0)

    def counts(rows):
        out = {}
        for r in rows:
            out[str(r["status"])] = out.get(str(r["status"]), 0) + 1
        return out

    res = {
        "limit": {"rpm": a.rpm, "tpm": a.tpm, "binding": binding, "tokens_per_request": round(tokens_per_request, 2),
                  "limit_rpm": round(limit_rpm, 1), "pace_interval_ms": round(interval_ms, 1)},
        "interactive": {"queue_ms": spread(queue), "latency_ms": spread(latency), "wait_ms": spread(wait),
                        "latency_all_ms": spread(latency_all),
                        "statuses": counts(inter)},
        "batch": {"statuses": counts(batch), "ok_per_min": round(batch_rpm, 1),
                  "fraction_of_limit": round(batch_rpm / limit_rpm, 3)},
        "steady_minutes": round(minutes, 2),
        "upstream": {"admitted_per_min": round(upstream_rpm, 1), "fraction_of_limit": round(upstream_rpm / limit_rpm, 3),
                     "tokens_per_min": round(upstream_tpm), "sim_429": stats.get("by_status", {}).get("429", 0),
                     "sim_rate_limited": stats.get("rate_limited"), "sim_requests": stats.get("requests")},
        "ledger_60s": {"max_requests": max_requests, "max_tokens": max_tokens,
                       "over_rpm": bool(a.rpm) and max_requests > a.rpm, "over_tpm": bool(a.tpm) and max_tokens > a.tpm,
                       "max_requests_1s": max_1s},
        "answers_in_wrong_lane": wrong_lane,
        "interactive_over_2_intervals_at_s": slow_at,
        "longest_upstream_gap": {"ms": gap, "at_s": round((gap_at * 1e6 - span[0]) / 1e9, 1)},
    }

    def ms(s, key):
        v = s[key]
        return "-" if v is None else f"{v:.0f} ms ({v / interval_ms:.2f} intervals)"

    print(f"limit: {a.rpm:g} requests/min" + (f", {a.tpm:g} tokens/min" if a.tpm else "") +
          f"; {tokens_per_request:.1f} tokens charged per request, so {binding} bind: {limit_rpm:.0f} requests/min,"
          f" pace interval {interval_ms:.1f} ms")
    for name, s in (("queue (x-floodgate-queue-ms)", res["interactive"]["queue_ms"]),
                    ("client latency", res["interactive"]["latency_ms"]),
                    (f"client wait (latency - {a.sim_latency_ms:g} ms)", res["interactive"]["wait_ms"]),
                    ("client latency of every answer, 429s too", res["interactive"]["latency_all_ms"])):
        print(f"interactive {name}: n={s['n']} p50 {ms(s, 'p50')}, p95 {ms(s, 'p95')}, p99 {ms(s, 'p99')},"
              f" max {ms(s, 'max')}")
    print(f"interactive waits over 2 intervals: {len(slow_at)}, sent at {slow_at} s; the upstream's longest pause"
          f" in the steady part: {gap} ms, at {res['longest_upstream_gap']['at_s']} s")
    print(f"interactive statuses {res['interactive']['statuses']}; batch statuses {res['batch']['statuses']}")
    print(f"steady part {minutes:.2f} min: batch {batch_rpm:.1f} answered/min = {batch_rpm / limit_rpm:.1%} of the limit;"
          f" upstream admitted {upstream_rpm:.1f}/min = {upstream_rpm / limit_rpm:.1%} ({upstream_tpm:.0f} tokens/min)")
    print(f"simulator: {res['upstream']['sim_429']} answers 429 (rate_limited {stats.get('rate_limited')}) of"
          f" {stats.get('requests')} requests")
    print(f"ledger, any 60 s window: at most {max_requests} requests (limit {a.rpm:g})" +
          (f", {max_tokens} tokens (limit {a.tpm:g})" if a.tpm else f", {max_tokens} tokens") +
          (": OVER THE LIMIT" if res["ledger_60s"]["over_rpm"] or res["ledger_60s"]["over_tpm"] else ": within") +
          f"; at most {max_1s} requests in any 1 s (an even pace: {limit_rpm / 60:.0f})")
    if wrong_lane:
        print(f"answers with another lane than asked: {wrong_lane}")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
