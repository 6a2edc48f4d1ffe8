#!/usr/bin/env python3
"""The gateway's own time per relayed call (floodgate_gateway_own_seconds, /metrics) over a
run: `own_time.py save METRICS_URL FILE` keeps the histogram before the run;
`own_time.py since METRICS_URL FILE` prints the p50/p99/p999 of the calls since then,
interpolated linearly within the buckets they fall in (the buckets are 25-500 us wide
below 3 ms)."""
import re
import sys
import urllib.request


def histogram(url):
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    rows = re.findall(r'^floodgate_gateway_own_seconds_bucket\{le="([^"]+)"\} (\d+)$', text, re.M)
    return [(float("inf") if le == "+Inf" else float(le), int(n)) for le, n in rows]


def quantile(buckets, q):
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank = q * total
    lower_bound, lower_count = 0.0, 0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower_bound
            inside = cumulative - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / inside if inside else 1.0)
        lower_bound, lower_count = bound, cumulative
    return lower_bound


def main():
    mode, url, path = sys.argv[1:4]
    now = histogram(url)
    if mode == "save":
        with open(path, "w") as f:
            f.write(" ".join(f"{b} {n}" for b, n in now))
        return
    before = open(path).read().split()
    before = [int(before[i + 1]) for i in range(0, len(before), 2)]
    delta = [(b, n - m) for (b, n), m in zip(now, before)]
    us = lambda q: 1e6 * quantile(delta, q)
    print(f"gateway own time ({delta[-1][1]} calls): p50 {us(0.5):.0f} us, p99 {us(0.99):.0f} us, p999 {us(0.999):.0f} us")


if __name__ == "__main__":
    main()
