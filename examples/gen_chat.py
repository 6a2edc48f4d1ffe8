#!/usr/bin/env python3
"""Generates examples/chat.jsonl: a few hundred realistic chat requests in the Batch API
input format (support-ticket triage), deterministic so the committed file can be rebuilt."""
import json
import random

random.seed(7)
products = ["router", "thermostat", "e-reader", "headphones", "smart plug", "doorbell camera", "espresso machine"]
problems = ["stopped charging", "won't connect to Wi-Fi", "shows an error after the update", "arrived with a cracked screen",
            "makes a clicking noise", "was billed twice", "keeps rebooting overnight", "lost all its settings"]
tones = ["polite", "frustrated", "brief", "detailed"]
print_lines = []
for i in range(300):
    product = random.choice(products)
    problem = random.choice(problems)
    tone = random.choice(tones)
    ticket = f"My {product} {problem}. I have tried turning it off and on. Order #{100000 + i}."
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You triage customer support tickets. Answer with a category "
                                          "(hardware, connectivity, billing, software) and one sentence for the agent."},
            {"role": "user", "content": f"({tone} customer) {ticket}"},
        ],
        "max_tokens": 60,
        "temperature": 0,
    }
    print_lines.append(json.dumps({"custom_id": f"ticket-{i:04d}", "method": "POST",
                                   "url": "/v1/chat/completions", "body": body}))
with open("examples/chat.jsonl", "w") as f:
    f.write("\n".join(print_lines) + "\n")
