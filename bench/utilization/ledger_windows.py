#!/usr/bin/env python3
"""The most requests and charged tokens the server admitted in any 60-second window, per
model, from a `floodgate sim --ledger` file (docs/sim.md, "Ledger"):

    ledger_windows.py LEDGER.jsonl [--rpm R] [--tpm T] [--window-s 60]

Only admitted lines count (`admitted` true), at their admission instant (`admitted_ms`,
the simulator's monotonic clock) with their charge (`tokens_charged`, after any refund).
The windows are (t - 60 s, t] for every admission t: the maximum over all windows is
reached at one of them. With --rpm/--tpm, says whether any window went over. Prints one
JSON object. Standard library only.
"""
import argparse
import collections
import importlib.util
import json
import os
import sys


def _engine_windows():
    """bench/engine/ledger_windows.py: its sliding-window maximum is the one used here."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine", "ledger_windows.py")
    spec = importlib.util.spec_from_file_location("engine_ledger_windows", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def max_window(times_ms, weights, window_ms=60_000):
    """Largest sum of weights over entries with time in (t - window, t], t an entry time."""
    if not times_ms:
        return 0
    return int(_engine_windows().max_in_window(times_ms, weights, window_ms))


def admitted_by_model(rows):
    per_model = collections.defaultdict(list)
    for r in rows:
        if r.get("admitted") and r.get("model"):
            per_model[r["model"]].append(r)
    for rs in per_model.values():
        rs.sort(key=lambda r: r["admitted_ms"])
    return per_model


def windows(rows, window_ms=60_000):
    out = {}
    for model, rs in admitted_by_model(rows).items():
        times = [r["admitted_ms"] for r in rs]
        out[model] = {"admitted": len(rs),
                      "max_requests": max_window(times, [1] * len(rs), window_ms),
                      "max_tokens": max_window(times, [r.get("tokens_charged") or 0 for r in rs], window_ms)}
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ledger")
    p.add_argument("--rpm", type=float, default=0)
    p.add_argument("--tpm", type=float, default=0)
    p.add_argument("--window-s", type=float, default=60)
    a = p.parse_args()
    with open(a.ledger, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    out = {"lines": len(rows), "http_429": sum(1 for r in rows if r.get("status") == 429),
           "models": windows(rows, int(a.window_s * 1000))}
    for m in out["models"].values():
        if a.rpm:
            m["over_rpm"] = m["max_requests"] > a.rpm
        if a.tpm:
            m["over_tpm"] = m["max_tokens"] > a.tpm
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
