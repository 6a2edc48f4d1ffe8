#!/usr/bin/python3
"""The approach users have today, as the memory benchmark's peer: asyncio + aiohttp, every
file of a folder uploaded to /v1/audio/transcriptions with `concurrency` in flight.

  peer_upload.py DIR --base-url URL [--concurrency 50] [--mode whole|file] [--model whisper-1]

--mode whole reads each file into memory before uploading (what the issue's users do);
--mode file hands aiohttp the open file object (it streams it in 64 KiB pieces).
Prints one JSON object: files, ok, bytes_uploaded, seconds.
Run it with Debian's /usr/bin/python3 (python3-aiohttp).
"""
import argparse
import asyncio
import json
import os
import sys
import time

import aiohttp


async def upload(session, sem, url, path, mode, model, stats):
    async with sem:
        form = aiohttp.FormData()
        form.add_field("model", model)
        form.add_field("response_format", "json")
        if mode == "whole":
            with open(path, "rb") as f:
                data = f.read()
            form.add_field("file", data, filename=os.path.basename(path), content_type="application/octet-stream")
            f = None
        else:
            f = open(path, "rb")
            form.add_field("file", f, filename=os.path.basename(path), content_type="application/octet-stream")
        try:
            async with session.post(url, data=form, headers={"Authorization": "Bearer sk-bench"}) as resp:
                body = await resp.read()
                if resp.status == 200:
                    stats["ok"] += 1
                    stats["bytes_uploaded"] += os.path.getsize(path)
                else:
                    stats["errors"] += 1
                    stats.setdefault("last_error", body[:200].decode("utf-8", "replace"))
        finally:
            if f is not None:
                f.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--mode", choices=["whole", "file"], default="whole")
    ap.add_argument("--model", default="whisper-1")
    args = ap.parse_args()
    files = sorted(os.path.join(args.dir, n) for n in os.listdir(args.dir) if not n.startswith("."))
    stats = {"files": len(files), "ok": 0, "errors": 0, "bytes_uploaded": 0}
    sem = asyncio.Semaphore(args.concurrency)
    url = args.base_url.rstrip("/") + "/audio/transcriptions"
    start = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=600)
    conn = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as session:
        await asyncio.gather(*(upload(session, sem, url, p, args.mode, args.model, stats) for p in files))
    stats["seconds"] = round(time.monotonic() - start, 3)
    stats["mode"] = args.mode
    print(json.dumps(stats))
    return 0 if stats["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
