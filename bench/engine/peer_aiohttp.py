#!/usr/bin/python3
"""The approach users have today: asyncio + aiohttp with a semaphore bounding concurrency.

    /usr/bin/python3 peer_aiohttp.py INPUT.jsonl OUTPUT.jsonl --base-url http://127.0.0.1:PORT/v1 \
        [--concurrency 64] [--api-key sk-...]

Reads Batch API input lines, POSTs every body to BASE_URL + url (the "/v1" prefix of the
line's url is dropped when BASE_URL already ends in /v1), at most --concurrency at once,
and writes one Batch API output line per request. No rate limiting, no retries: it is the
peer for raw throughput. Prints one JSON summary line on stdout:
{"requests": N, "ok": N, "errors": N, "seconds": S, "requests_per_s": R}.
Needs Debian's python3-aiohttp, hence /usr/bin/python3 (not a pyenv python on PATH).
"""
import argparse
import asyncio
import json
import os
import sys
import time

import aiohttp


def target_url(base_url: str, url: str) -> str:
    base = base_url.rstrip("/")
    if base.endswith("/v1") and url.startswith("/v1/"):
        url = url[3:]
    return base + url


async def run(args) -> dict:
    with open(args.input, "r", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    semaphore = asyncio.Semaphore(args.concurrency)
    headers = {"Authorization": f"Bearer {args.api_key}", "Content-Type": "application/json"}
    results = []
    counts = {"ok": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=600)

    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        async def call(line: dict) -> None:
            async with semaphore:
                url = target_url(args.base_url, line.get("url", "/v1/chat/completions"))
                data = json.dumps(line["body"])
                try:
                    async with session.post(url, data=data) as resp:
                        text = await resp.text()
                        try:
                            body = json.loads(text)
                        except ValueError:
                            body = text
                        ok = 200 <= resp.status < 300
                        counts["ok" if ok else "errors"] += 1
                        results.append({"id": f"batch_req_{line['custom_id']}", "custom_id": line["custom_id"],
                                        "response": {"status_code": resp.status,
                                                     "request_id": resp.headers.get("x-request-id", ""),
                                                     "body": body},
                                        "error": None})
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    counts["errors"] += 1
                    results.append({"id": f"batch_req_{line['custom_id']}", "custom_id": line["custom_id"],
                                    "response": None, "error": {"code": "connection", "message": str(e)}})

        start = time.monotonic()
        await asyncio.gather(*(call(line) for line in lines))
        seconds = time.monotonic() - start

    with open(args.output, "w", encoding="utf-8") as out:
        for r in results:
            out.write(json.dumps(r, separators=(",", ":")))
            out.write("\n")
    n = len(lines)
    return {"requests": n, "ok": counts["ok"], "errors": counts["errors"], "seconds": round(seconds, 3),
            "requests_per_s": round(n / seconds, 1) if seconds > 0 else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description="asyncio + aiohttp + semaphore peer")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"))
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "sk-bench"))
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    print(json.dumps(summary))
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
