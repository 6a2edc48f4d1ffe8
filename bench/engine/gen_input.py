#!/usr/bin/env python3
"""Writes N request lines in the OpenAI Batch API input format, for the engine benchmark.

    gen_input.py N [--model gpt-4o-mini] [--max-tokens 16] [--endpoint chat|embeddings] > input.jsonl

Each line: {"custom_id": "req-<i>", "method": "POST", "url": "/v1/chat/completions",
"body": {...}}; bodies differ (the index is in the prompt) so nothing can be cached.
Standard library only: runs with any python3.
"""
import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of lines")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--endpoint", choices=["chat", "embeddings"], default="chat")
    args = parser.parse_args()
    out = sys.stdout
    for i in range(1, args.n + 1):
        if args.endpoint == "chat":
            url = "/v1/chat/completions"
            body = {"model": args.model, "max_tokens": args.max_tokens,
                    "messages": [{"role": "user", "content": f"Say hello to number {i}."}]}
        else:
            url = "/v1/embeddings"
            body = {"model": args.model, "input": f"document number {i}"}
        out.write(json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": url, "body": body},
                             separators=(",", ":")))
        out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
