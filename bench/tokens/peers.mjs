// Encode throughput of the JavaScript peers on the benchmark texts, same method as
// tokens_bench: best of REPS runs (1 for js-tiktoken, which needs ~20 s per 10 MB), MB/s
// of process CPU time, token counts for checking.
// Peers: `tiktoken` (OpenAI's Rust core in WASM), `js-tiktoken` (pure JS), `gpt-tokenizer`
// (pure JS with a merge cache). Each measurement runs in its own child process; the
// single-word worst cases (word-*.txt) with a wall-clock limit, since the peers' merge is
// quadratic.
// Usage: node peers.mjs PREFIX REPS TIMEOUT_S FILE...   (PREFIX holds node_modules/)
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join, basename } from "node:path";
import { spawnSync } from "node:child_process";

const [prefix, repsArg, timeoutArg, ...files] = process.argv.slice(2);
const require = createRequire(join(prefix, "package.json"));
const reps = Number(repsArg);

function load(peer, enc) {
  if (peer === "tiktoken") {
    const e = require("tiktoken").get_encoding(enc);
    return (t) => e.encode(t, [], []).length;
  }
  if (peer === "js-tiktoken") {
    const { Tiktoken } = require("js-tiktoken/lite");
    const ranks = require(`js-tiktoken/ranks/${enc}`);
    const e = new Tiktoken(ranks);
    return (t) => e.encode(t, [], []).length;
  }
  const m = require(`gpt-tokenizer/cjs/encoding/${enc}`);
  return (t) => m.encode(t, { allowedSpecial: new Set(), disallowedSpecial: new Set() }).length;
}

function cpu() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

if (process.env.FG_PEER_CHILD) {
  const [peer, enc, file] = process.env.FG_PEER_CHILD.split("|");
  const text = readFileSync(file, "utf8");
  const encode = load(peer, enc);
  let best = Infinity, n = 0;
  for (let r = 0; r < (peer === "js-tiktoken" ? 1 : reps); r++) {
    const t0 = cpu();
    n = encode(text);
    best = Math.min(best, cpu() - t0);
  }
  const bytes = Buffer.byteLength(text);
  console.log(`${peer} ${enc} ${basename(file)} ${(bytes / best / 1e6).toFixed(1)} ${n} ${best.toFixed(4)}`);
  process.exit(0);
}

for (const enc of ["cl100k_base", "o200k_base"]) {
  for (const peer of ["tiktoken", "js-tiktoken", "gpt-tokenizer"]) {
    for (const file of files) {
      const r = spawnSync(process.execPath, [process.argv[1], ...process.argv.slice(2)], {
        env: { ...process.env, FG_PEER_CHILD: `${peer}|${enc}|${file}` },
        timeout: basename(file).startsWith("word-") ? Number(timeoutArg) * 1000 : 0, encoding: "utf8",
      });
      if (r.status === 0) process.stdout.write(r.stdout);
      else console.log(`${peer} ${enc} ${basename(file)} timeout - -`);
    }
  }
}
