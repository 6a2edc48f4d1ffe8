#!/usr/bin/env python3
"""Resident memory of a whole process tree, sampled: tree_rss.py PID [INTERVAL_MS] [--without-root].

/usr/bin/time -v reports ru_maxrss, which for a process with children is the peak of the
largest single process (Linux keeps the maximum, not a sum), so it cannot say whether two
processes of one job were big at the same time. This samples every INTERVAL_MS (default 10)
the processes descending from PID (PID included), sums their VmRSS, and prints one JSON line
when PID is gone (--without-root leaves PID itself out, e.g. /usr/bin/time): the largest sum seen (the tree's simultaneous peak, as sampled), and for
each process (each program a pid ran: exec starts a new entry) its name, own peak (VmHWM,
as last sampled) and when it was seen (seconds from the start).
tree_rss.py --summary FILE prints such a JSON line as one line of text.
"""
import json
import os
import sys
import time


def status(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("Name", "PPid", "VmRSS", "VmHWM"):
            out[key] = value.strip()
    return out


def kib(value):
    return int(value.split()[0]) if value else 0


def summary(path):
    with open(path) as f:
        t = json.load(f)
    procs = ", ".join("%s %.1f MiB (%.2f-%.2f s)" % (p["name"], p["hwm_kib"] / 1024, p["first_s"], p["last_s"])
                      for p in t["processes"])
    print("%.1f MiB at %.2f s (%s alive); per process: %s" % (
        t["tree_peak_kib"] / 1024, t["tree_peak_at_s"], " + ".join(t["tree_peak_processes"]), procs))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        summary(sys.argv[2])
        return
    args = [a for a in sys.argv[1:] if a != "--without-root"]
    without_root = len(args) != len(sys.argv) - 1
    root = int(args[0])
    interval = (float(args[1]) if len(args) > 1 else 10.0) / 1000.0
    start = time.monotonic()
    procs = {}
    peak_kib = 0
    peak_at = 0.0
    peak_names = []
    while True:
        now = time.monotonic() - start
        parents = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = status(name)
                if st is not None and "PPid" in st:
                    parents[int(name)] = (int(st["PPid"]), st)
        if root not in parents:
            break
        tree = {root}
        grew = True
        while grew:
            grew = False
            for pid, (ppid, _) in parents.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        if without_root:
            tree.discard(root)
        total = 0
        alive = []
        for pid in tree:
            st = parents[pid][1]
            rss = kib(st.get("VmRSS"))
            total += rss
            if rss > 0:
                alive.append(st.get("Name", "?"))
            # Keyed by pid and name: a process that exec()s another program is a new entry
            # (its VmHWM starts again), e.g. floodgate -> floodgate-audio -> floodgate.
            p = procs.setdefault((pid, st.get("Name", "?")), {"name": st.get("Name", "?"), "first_s": round(now, 3)})
            p["hwm_kib"] = max(p.get("hwm_kib", 0), kib(st.get("VmHWM")))
            p["last_s"] = round(now, 3)
        if total > peak_kib:
            peak_kib, peak_at, peak_names = total, now, sorted(alive)
        time.sleep(interval)
    print(json.dumps({"tree_peak_kib": peak_kib, "tree_peak_at_s": round(peak_at, 3), "tree_peak_processes": peak_names,
                      "processes": [dict(pid=key[0], **p) for key, p in sorted(procs.items(), key=lambda kv: (kv[0][0], kv[1]["first_s"]))]}))


if __name__ == "__main__":
    main()
