// Writes the benchmark texts into OUTDIR, deterministically (fixed seeds, no inputs but
// tests/tokens/conformance/natural.txt, which is in the repository):
//   mixed.txt        ~10 MB: multilingual natural paragraphs, code, JSON, numbers, chosen
//                    and lightly varied by a seeded PRNG. Repetitive, like real corpora.
//   unique.txt       ~10 MB: pseudo-words from random syllables in five scripts, numbers and
//                    punctuation; almost no word repeats, so no merge cache can help.
//   word-a.txt       1 MiB of the letter 'a': one pre-token of 1 MiB.
//   word-random.txt  1 MiB of random lowercase letters: one pre-token, no repetition.
// Usage: node gen-texts.mjs NATURAL_TXT OUTDIR
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const [naturalPath, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
let seed = 20240601;
function rnd() {
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const TARGET = 10 * 1000 * 1000;

const paragraphs = readFileSync(naturalPath, "utf8").split("\n").filter((l) => l.length);
const code = [
  "for (std::size_t i = 0; i < n; ++i) {\n    sum += values[i] * weights[i];\n}\n",
  "def handler(event, context):\n    body = json.loads(event[\"body\"])\n    return {\"statusCode\": 200, \"body\": json.dumps(body)}\n",
  "SELECT id, name, created_at FROM users WHERE active = 1 ORDER BY created_at DESC LIMIT 100;\n",
  "const res = await fetch(url, { method: \"POST\", headers: { \"content-type\": \"application/json\" } });\n",
];
let mixed = "";
let k = 0;
let bytes = 0;
const add = (t) => { bytes += Buffer.byteLength(t); return t; };
while (bytes < TARGET) {
  const r = rnd();
  if (r < 0.6) mixed += add(pick(paragraphs) + "\n");
  else if (r < 0.8) mixed += add(pick(code).replace("100", String(Math.floor(rnd() * 10000))));
  else if (r < 0.95) mixed += add(JSON.stringify({ custom_id: `req-${k++}`, method: "POST", url: "/v1/chat/completions",
    body: { model: "gpt-4o-mini", messages: [{ role: "user", content: pick(paragraphs) }], max_tokens: Math.floor(rnd() * 1000) } }) + "\n");
  else mixed += add(`${Math.floor(rnd() * 1e9)} ${(rnd() * 1000).toFixed(3)} 0x${Math.floor(rnd() * 2 ** 31).toString(16)}\n`);
}
writeFileSync(join(outDir, "mixed.txt"), mixed);

const syllables = {
  latin: "ka to ri mu sen dal vor pli gra the qua zor fen lim wex bu no ha strand".split(" "),
  cyrillic: "ка то ри му сен дал вор пли гра зо фе ли бу но ха".split(" "),
  greek: "κα το ρι μυ σεν δαλ βορ πλι γρα ζο φε λι".split(" "),
  cjk: Array.from("的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从知"),
  arabic: "كا تو ري مو سن دا ور لي غر زو في بو نو ها".split(" "),
};
const scripts = Object.keys(syllables);
let unique = "";
bytes = 0;
while (bytes < TARGET) {
  const script = pick(scripts);
  const n = 4 + Math.floor(rnd() * 14);
  let line = "";
  for (let w = 0; w < n; w++) {
    const syl = syllables[script];
    let word = "";
    const len = 1 + Math.floor(rnd() * 4);
    for (let s = 0; s < len; s++) word += pick(syl);
    if (rnd() < 0.15) word = word[0].toUpperCase() + word.slice(1);
    if (rnd() < 0.08) word = String(Math.floor(rnd() * 1e6));
    line += (w && script !== "cjk" ? " " : "") + word + (rnd() < 0.1 ? pick([",", ".", ";", ":", "!", "?"]) : "");
  }
  unique += add(line + "\n");
}
writeFileSync(join(outDir, "unique.txt"), unique);

writeFileSync(join(outDir, "word-a.txt"), "a".repeat(1 << 20));
let word = "";
for (let i = 0; i < 1 << 20; i++) word += String.fromCharCode(97 + Math.floor(rnd() * 26));
writeFileSync(join(outDir, "word-random.txt"), word);
