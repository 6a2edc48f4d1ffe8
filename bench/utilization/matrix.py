#!/usr/bin/env python3
"""The utilization matrix (issue 11, "Must show"): how close `floodgate run` finishes to the
fastest schedule the server's own counting allows, how many 429s it draws and the most
requests/tokens the server admitted in any 60-second window, for

    workloads  chat_nomax (chat without max_tokens), chat_max60 (max_tokens 60),
               long (~1,500-token prompts, TPM-bound), embed (embeddings, TPM-bound),
               mixed (two models: one without max_tokens, one with max_tokens 60)
  x servers    openai  (input + (max_tokens | 16) at admission, no refund; the default sim)
               flat16  (--charge flat:16, Azure gpt-35-turbo-like)
               ctx4096 (--charge context:4096: 4,096 per request without max_tokens)
               refund  (input + allowance at admission, corrected to the usage after: --refund-usage)
  x windows    bucket, rolling   (floodgate sim --window)
  x limits     given   (floodgate run --rpm R --tpm T, and --charge RULE matching the server
                       when the client has that flag: input+16, flat:16, context:4096,
                       input+16,refund)
               learned (floodgate run --limits auto: from the x-ratelimit-* headers)

Every cell starts its own `floodgate sim` (port 0, 40 ms latency, R rpm and T tpm per
model) and runs one job with `floodgate run`. The job size is chosen per cell so that the
binding limit needs about 1.5 minutes' worth of quota (the minimum is then 60 s). The
minimum is computed from the server's ledger: the admitted requests, in order, with their
charges, placed greedily at the earliest instant the server's counting (bucket or rolling,
every dimension, per model) admits them AND every strict 60 s window stays within the limit
(the rule the client keeps; a bucket alone would admit 1.5 minutes' quota in 30 s, up to
2x the limit in one 60 s window), plus the latency. util = minimum / wall. A cell that runs past --cap seconds is stopped ("cut",
shown as done/requests and ~wall): its wall time is extrapolated at the pace it kept
(cap × requests / done, per model, the slowest model's) and its minimum is the whole job's, the unsent requests charged
like the sent ones.

    bench/utilization/matrix.py [--build build] [--sim-bin FLOODGATE] [--quick] [--par 4] [--cap 150] [--json out.jsonl]
                                [--only WORKLOAD,...] [--servers S,...] [--windows W,...] [--limits L,...]

    bench/utilization/matrix.py --compare BEFORE.jsonl AFTER.jsonl   # two --json runs side by side

--quick: servers openai and ctx4096, window rolling (20 cells). Standard library only.
"""
import argparse
import collections
import concurrent.futures
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledger_windows import admitted_by_model, max_window  # noqa: E402

RPM = 600
TPM = 100_000
LATENCY_S = 0.040
WORDS = ("time person year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact good new first last long great little own other old right "
         "big high different small large next early young important few public bad same able").split()

SERVERS = {
    "openai": [],
    "flat16": ["--charge", "flat:16"],
    "ctx4096": ["--charge", "context:4096"],
    "refund": ["--refund-usage"],
}
# The charge model given to a client that takes one (`floodgate run --charge`, issue 11)
# in the "given" cells, so that limits *and* charge model are known there.
CLIENT_CHARGE = {"openai": "input+16", "flat16": "flat:16", "ctx4096": "context:4096", "refund": "input+16,refund"}
WORKLOADS = ["chat_nomax", "chat_max60", "long", "embed", "mixed"]


def text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


# (model, endpoint, words of the prompt, max_tokens or None) of each workload's models.
def models_of(workload):
    if workload == "chat_nomax":
        return [("gpt-4o-mini", "chat", 50, None)]
    if workload == "chat_max60":
        return [("gpt-4o-mini", "chat", 50, 60)]
    if workload == "long":
        return [("gpt-4o-mini", "chat", 1500, 16)]
    if workload == "embed":
        return [("text-embedding-3-small", "embed", 250, None)]
    return [("gpt-4o-mini", "chat", 50, None), ("gpt-4.1-mini", "chat", 50, 60)]


def admission_charge(server, kind, words, max_tokens):
    """The server's charge of one request, roughly (prompt ~ words + 10 tokens): sizes the job."""
    prompt = words + 10
    if kind == "embed":
        return words
    if server == "flat16":
        return 16
    if server == "ctx4096" and max_tokens is None:
        return 4096
    return prompt + (max_tokens or 16)


def job_size(server, kind, words, max_tokens):
    per_minute = min(RPM, TPM / admission_charge(server, kind, words, max_tokens))
    return max(2, math.ceil(1.5 * per_minute))


def write_input(path, workload, server, seed):
    rng = random.Random(seed)
    lines = []
    specs = models_of(workload)
    sizes = [job_size(server, kind, words, mt) for (_, kind, words, mt) in specs]
    for i in range(max(sizes)):
        for (model, kind, words, mt), size in zip(specs, sizes):
            if i >= size:
                continue
            if kind == "embed":
                body = {"model": model, "input": text(rng, words)}
                url = "/v1/embeddings"
            else:
                body = {"model": model, "messages": [{"role": "user", "content": "Classify the topic of: " + text(rng, words)}]}
                if mt is not None:
                    body["max_tokens"] = mt
                url = "/v1/chat/completions"
            lines.append({"custom_id": f"{model}-{i}", "method": "POST", "url": url, "body": body})
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    return {model: size for (model, _, _, _), size in zip(specs, sizes)}


def read_ledger(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def minimum_seconds(admitted, window):
    """Greedy earliest schedule of `admitted` [(charge at admission, final charge)] for one
    model at R requests/min and T tokens/min that (1) the server's counting admits (the
    cell's window mode) and (2) keeps every strict 60 s window within the limits: the rule
    the client must keep when limits are given (issue 11), and keeps in every cell because
    it cannot tell a bucket from a rolling window. Against a rolling server (2) is (1).
    Against a bucket it forbids the bucket's head start (a full bucket, then the refill:
    up to 2x the limit in one 60 s window, which a rolling server would refuse), so the
    minimum of a job of 1.5 minutes' quota is 60 s, not 30 s. Each request's earliest
    instant is the latest of what each rule needs, repeated until both hold (both rules
    only ever delay, so greedy in order is the fastest)."""
    dims = [(RPM, lambda a: 1, lambda a: 1), (TPM, lambda a: a[0], lambda a: a[1])]
    entries = [collections.deque() for _ in dims]  # the strict window: (time, final charge)
    used = [0.0 for _ in dims]
    avail = [float(limit) for limit, _, _ in dims]  # the bucket
    last = 0.0
    t = 0.0

    def bucket_have(d, at):
        limit = dims[d][0]
        return min(limit, avail[d] + (at - last) * limit / 60.0)

    for a in admitted:
        while True:
            start = t
            for d, (limit, need, _) in enumerate(dims):
                q = entries[d]
                while q and q[0][0] <= t - 60.0:
                    used[d] -= q.popleft()[1]
                if used[d] + need(a) > limit + 1e-9:
                    freed = 0.0  # wait until enough leaves the window
                    for when, cost in q:
                        freed += cost
                        if used[d] - freed + need(a) <= limit + 1e-9:
                            t = max(t, when + 60.0)
                            break
                if window == "bucket":
                    have = bucket_have(d, t)
                    if have + 1e-9 < need(a):
                        t += (need(a) - have) * 60.0 / limit
            if t == start:
                break
        for d, (_, need, final) in enumerate(dims):
            entries[d].append((t, final(a)))
            used[d] += final(a)
            if window == "bucket":
                avail[d] = bucket_have(d, t) - final(a)
        last = t
    return t


def start_sim(sim_bin, work, window, server):
    out = open(os.path.join(work, "sim.out"), "w")
    err = open(os.path.join(work, "sim.err"), "w")
    proc = subprocess.Popen([sim_bin, "sim", "--port", "0", "--threads", "1", "--latency", "fixed:40ms",
                             "--ledger", os.path.join(work, "ledger.jsonl"), "--rpm", str(RPM), "--tpm", str(TPM),
                             "--window", window] + SERVERS[server], stdout=out, stderr=err)
    for _ in range(200):
        with open(os.path.join(work, "sim.out")) as f:
            first = f.readline().strip()
        if first.startswith("http"):
            return proc, first
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("simulator did not start: " + open(os.path.join(work, "sim.err")).read())


def run_cell(fg, sim_bin, cell, cap, client_charge):
    workload, server, window, limits = cell
    work = tempfile.mkdtemp(prefix="fg_util_")
    sim = client = None
    try:
        sizes = write_input(os.path.join(work, "in.jsonl"), workload, server, seed=zlib.crc32("/".join(cell).encode()))
        n = sum(sizes.values())
        sim, base = start_sim(sim_bin, work, window, server)
        args = [fg, "run", os.path.join(work, "in.jsonl"), "-o", os.path.join(work, "out.jsonl"), "--overwrite", "--quiet"]
        if limits == "given":
            args += ["--rpm", str(RPM), "--tpm", str(TPM)]
            if client_charge:
                args += ["--charge", CLIENT_CHARGE[server]]
        env = dict(os.environ, OPENAI_BASE_URL=base, OPENAI_API_KEY="sk-bench")
        t0 = time.monotonic()
        client = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "run.err"), "w"),
                                  start_new_session=True)
        cut = False
        try:
            client.wait(timeout=cap)
        except subprocess.TimeoutExpired:
            cut = True
            os.killpg(client.pid, signal.SIGKILL)
            client.wait()
        wall = time.monotonic() - t0
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=20)
        rows = read_ledger(os.path.join(work, "ledger.jsonl"))
        minimum = 0.0
        max_req = max_tok = 0
        done = sum(1 for r in rows if r.get("status") == 200)
        for model, rs in admitted_by_model(rows).items():
            times = [r["admitted_ms"] for r in rs]
            max_req = max(max_req, max_window(times, [1] * len(rs)))
            max_tok = max(max_tok, max_window(times, [r["tokens_charged"] for r in rs]))
            charges = [(r["charge_at_admission"], r["tokens_charged"]) for r in rs]
            if cut:  # the whole job's minimum, its unsent requests charged like the sent ones
                charges = [charges[i % len(charges)] for i in range(sizes.get(model, len(charges)))]
            minimum = max(minimum, minimum_seconds(charges, window))
        minimum += LATENCY_S
        if cut:  # the wall time the job would take at the pace each model kept until the cut
            done_by_model = collections.Counter(r.get("model") for r in rows if r.get("status") == 200)
            wall = max(wall * size / max(done_by_model[model], 1) for model, size in sizes.items())
        return {"workload": workload, "server": server, "window": window, "limits": limits, "requests": n,
                "done": done, "wall_s": round(wall, 2), "min_s": round(minimum, 2), "util": round(minimum / wall, 3),
                "http_429": sum(1 for r in rows if r.get("status") == 429), "sent": len(rows),
                "max_req_60s": max_req, "max_tok_60s": max_tok, "cut": cut, "cap": cap, "exit": client.returncode}
    finally:
        for proc in (client, sim):  # never leave a process behind (an exception, Ctrl-C)
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def load(path):
    with open(path, encoding="utf-8") as f:
        return {(r["workload"], r["server"], r["window"], r["limits"]): r for r in map(json.loads, f) if r}


def cell_text(r, minimum):
    if r is None:
        return "–", "–", "–", "–"
    wall = ("~" if r["cut"] else "") + f"{r['wall_s']:.1f}"
    if r["cut"]:
        wall += f" ({r['done']}/{r['requests']} in {r.get('cap', 120):.0f} s)"
    if r.get("exit", 0) not in (0, None) and not r["cut"]:
        wall += f" (exit {r['exit']}, {r['done']}/{r['requests']} done)"
    return wall, f"{minimum / r['wall_s']:.2f}", str(r["http_429"]), f"{r['max_req_60s']} / {r['max_tok_60s']}"


def compare(before_path, after_path):
    """Prints the before and after runs of the matrix side by side (markdown). Both utils are
    computed against the after run's minimum (the same yardstick: a run made before the
    minimum kept the strict 60 s window measured bucket cells against 30 s)."""
    before, after = load(before_path), load(after_path)
    print("| workload | server | window | limits | requests | min s | before: wall s | util | 429s | max req / tok in 60 s "
          "| after: wall s | util | 429s | max req / tok in 60 s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(set(before) | set(after), key=lambda k: (WORKLOADS.index(k[0]), list(SERVERS).index(k[1]), k[2], k[3])):
        b, a = before.get(key), after.get(key)
        ref = a or b
        print("| " + " | ".join(list(key) + [str(ref["requests"]), f"{ref['min_s']:.1f}"] + list(cell_text(b, ref["min_s"])) +
                                list(cell_text(a, ref["min_s"]))) + " |")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build")
    p.add_argument("--sim-bin", help="the floodgate binary whose `sim` judges (default: the --build one)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--par", type=int, default=4)
    p.add_argument("--cap", type=float, default=150)
    p.add_argument("--json")
    p.add_argument("--only")
    p.add_argument("--servers")
    p.add_argument("--windows")
    p.add_argument("--limits")
    a = p.parse_args()
    fg = os.path.abspath(os.path.join(a.build, "apps/floodgate/floodgate"))
    sim_bin = os.path.abspath(a.sim_bin) if a.sim_bin else fg
    workloads = a.only.split(",") if a.only else WORKLOADS
    servers = a.servers.split(",") if a.servers else (["openai", "ctx4096"] if a.quick else list(SERVERS))
    windows = a.windows.split(",") if a.windows else (["rolling"] if a.quick else ["bucket", "rolling"])
    limit_modes = a.limits.split(",") if a.limits else ["given", "learned"]
    cells = [(w, s, win, lim) for w in workloads for s in servers for win in windows for lim in limit_modes]
    print(f"# {len(cells)} cells, {RPM} rpm and {TPM} tpm per model, 40 ms latency, cap {a.cap:.0f} s, par {a.par}",
          file=sys.stderr)
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.par) as pool:
        help_text = subprocess.run([fg, "run", "--help"], capture_output=True, text=True).stdout
        client_charge = "--charge" in help_text
        print(f"# client: {fg} (takes --charge: {client_charge}); judge: {sim_bin}", file=sys.stderr)
        futures = {pool.submit(run_cell, fg, sim_bin, c, a.cap, client_charge): c for c in cells}
        for f in concurrent.futures.as_completed(futures):
            r = f.result()
            results.append(r)
            print("# done", json.dumps(r), file=sys.stderr, flush=True)
    order = {c: i for i, c in enumerate(cells)}
    results.sort(key=lambda r: order[(r["workload"], r["server"], r["window"], r["limits"])])
    if a.json:
        with open(a.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    print("| workload | server | window | limits | requests | wall s | min s | util | 429s | max req/60 s | max tok/60 s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        wall = ("~" if r["cut"] else "") + f"{r['wall_s']:.1f}"
        req = f"{r['done']}/{r['requests']}" if r["cut"] else str(r["requests"])
        print(f"| {r['workload']} | {r['server']} | {r['window']} | {r['limits']} | {req} | {wall} | {r['min_s']:.1f} | "
              f"{r['util']:.2f} | {r['http_429']} | {r['max_req_60s']} | {r['max_tok_60s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
