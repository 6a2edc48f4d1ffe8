#!/usr/bin/env python3
"""Reads a `floodgate sim --ledger` file and reports what the server saw: requests, 429s,
the most requests and tokens in any 60-second window (sliding, at every request; at the
server's admission times when the ledger records them, `admitted_ms`), the most
requests in any 1-second window, and the span from the first to the last request.

    ledger_windows.py LEDGER.jsonl [--rpm R] [--tpm T]

With --rpm/--tpm it also says whether any 60-second window went over. Prints one JSON line.
Standard library only.
"""
import argparse
import bisect
import datetime
import json
import sys


def parse_ts(ts: str) -> float:
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def max_in_window(times, weights, window):
    """Largest sum of weights over entries with time in (t - window, t], t an entry time."""
    best = 0.0
    total = 0.0
    lo = 0
    for hi, t in enumerate(times):
        total += weights[hi]
        while times[lo] <= t - window:
            total -= weights[lo]
            lo += 1
        best = max(best, total)
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("ledger")
    parser.add_argument("--rpm", type=float, default=0)
    parser.add_argument("--tpm", type=float, default=0)
    args = parser.parse_args()
    rows = []
    with open(args.ledger, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    out = {"requests": len(rows), "http_429": sum(1 for r in rows if r.get("status") == 429)}
    if rows and "admitted_ms" in rows[0]:
        # The server's own count: what it admitted, at the time it admitted it (ledgers of
        # simulators that record it; `ts` is when the answer was logged).
        rows = [r for r in rows if r.get("admitted")]
        rows.sort(key=lambda r: r["admitted_ms"])
        times = [r["admitted_ms"] / 1000.0 for r in rows]
    else:
        rows.sort(key=lambda r: r["ts"])
        times = [parse_ts(r["ts"]) for r in rows]
    if rows:
        ones = [1.0] * len(rows)
        tokens = [float(r.get("tokens_charged") or 0) for r in rows]
        out["span_s"] = round(times[-1] - times[0], 3)
        out["max_requests_60s"] = int(max_in_window(times, ones, 60.0))
        out["max_tokens_60s"] = int(max_in_window(times, tokens, 60.0))
        out["max_requests_1s"] = int(max_in_window(times, ones, 1.0))
        if args.rpm:
            out["over_rpm"] = out["max_requests_60s"] > args.rpm
        if args.tpm:
            out["over_tpm"] = out["max_tokens_60s"] > args.tpm
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
