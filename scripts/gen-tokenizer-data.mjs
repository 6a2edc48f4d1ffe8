// Turns the fetched rank files and Unicode data into the blobs src/tokens/ embeds.
// Usage: node gen-tokenizer-data.mjs RANKS_DIR UNICODE_DIR OUTDIR
//
// <enc>.bin (little endian): "FGRK" u32 count, u32 rank[count], u32 offset[count + 1],
//   then the token bytes; entries sorted by rank, token i is bytes[offset[i], offset[i+1]).
// unicode_classes.bin: "FGUC" then u16 stage1[0x1100] (block of 256 code points -> block
//   number) and the 256-byte blocks; each byte is a set of the pre-tokenizer's classes:
//   1 letter (L), 2 number (N), 4 White_Space, 8 [Lu Lt Lm Lo M], 16 [Ll Lm Lo M], 32 mark (M).
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [ranksDir, unicodeDir, outDir] = process.argv.slice(2);

function writeAtomic(path, buf) {
  writeFileSync(path + ".tmp", buf);
  renameSync(path + ".tmp", path);
}

for (const enc of ["cl100k_base", "o200k_base"]) {
  const lines = readFileSync(join(ranksDir, enc + ".tiktoken"), "utf8").split("\n").filter((l) => l.length);
  const entries = lines.map((l) => {
    const [b64, rank] = l.split(" ");
    return { bytes: Buffer.from(b64, "base64"), rank: Number(rank) };
  });
  entries.sort((a, b) => a.rank - b.rank);
  const n = entries.length;
  const total = entries.reduce((s, e) => s + e.bytes.length, 0);
  const head = Buffer.alloc(8 + 4 * n + 4 * (n + 1));
  head.write("FGRK", 0, "latin1");
  head.writeUInt32LE(n, 4);
  let off = 0;
  entries.forEach((e, i) => {
    head.writeUInt32LE(e.rank, 8 + 4 * i);
    head.writeUInt32LE(off, 8 + 4 * n + 4 * i);
    off += e.bytes.length;
  });
  head.writeUInt32LE(off, 8 + 4 * n + 4 * n);
  writeAtomic(join(outDir, enc + ".bin"), Buffer.concat([head, ...entries.map((e) => e.bytes)], head.length + total));
}

const cls = new Uint8Array(0x110000);
async function mark(path, bit) {
  const mod = await import(pathToFileURL(join(unicodeDir, path, "code-points.mjs")).href);
  for (const cp of mod.default) cls[cp] |= bit;
}
const L = 1, N = 2, WS = 4, UP = 8, LO = 16, M = 32;
const GC = "General_Category";
for (const c of ["Uppercase_Letter", "Titlecase_Letter"]) await mark(`${GC}/${c}`, L | UP);
await mark(`${GC}/Lowercase_Letter`, L | LO);
for (const c of ["Modifier_Letter", "Other_Letter"]) await mark(`${GC}/${c}`, L | UP | LO);
await mark(`${GC}/Mark`, M | UP | LO);
await mark(`${GC}/Number`, N);
await mark("Binary_Property/White_Space", WS);

const blocks = new Map();
const blockList = [];
const stage1 = Buffer.alloc(2 * 0x1100);
for (let b = 0; b < 0x1100; b++) {
  const blk = Buffer.from(cls.subarray(b * 256, b * 256 + 256));
  const key = blk.toString("latin1");
  if (!blocks.has(key)) {
    blocks.set(key, blockList.length);
    blockList.push(blk);
  }
  stage1.writeUInt16LE(blocks.get(key), 2 * b);
}
writeAtomic(join(outDir, "unicode_classes.bin"), Buffer.concat([Buffer.from("FGUC", "latin1"), stage1, ...blockList]));
