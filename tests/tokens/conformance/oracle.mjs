// Writes the conformance corpus and the official tiktoken's token ids for it.
// Usage: node oracle.mjs ORACLE_PREFIX NATURAL_TXT OUT.jsonl
// ORACLE_PREFIX holds node_modules/tiktoken (the Rust core compiled to WASM), installed
// by the tokens.oracle_install test. Every case is generated deterministically (a fixed
// seed), so the corpus is the same on every machine. Each output line:
//   {"name", "text" (base64 of the UTF-8), "<enc>": {"count", "fnv" (hex FNV-1a-64 of the
//    ids as u32 LE), "ids" (when count <= 256)}}
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [prefix, naturalPath, outPath] = process.argv.slice(2);
const require = createRequire(join(prefix, "package.json"));
const { get_encoding } = require("tiktoken");

const cases = [];
const add = (name, text) => cases.push({ name, text });

// ---- a deterministic PRNG (mulberry32) ----
let seed = 0x5eed1234;
function rnd() {
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const cp = (...xs) => String.fromCodePoint(...xs);

// ---- hand-written hard cases ----
add("empty", "");
add("endoftext as text", "<|endoftext|>");
add("specials as text", "Hello <|endoftext|> world <|fim_prefix|><|fim_middle|><|fim_suffix|><|endofprompt|>");
const contractions = ["s", "t", "re", "ve", "m", "ll", "d"];
for (const c of contractions) {
  const variants = new Set([c, c.toUpperCase(), c[0].toUpperCase() + c.slice(1), c[0] + c.slice(1).toUpperCase()]);
  for (const v of variants) {
    add(`contraction '${v}`, `he'${v} HE'${v} 'x'${v} '${v} ${"'"}${v}ing 1'${v} é'${v} Ü'${v}s '${v}'${v}`);
  }
}
add("long s contraction", "it'ſ IT'ſ 'ſ x'ſt");
add("apostrophes", "'' ''s rock'n'roll don’t O'Neil 'tis y'all'd've");
for (let n = 1; n <= 12; n++) add(`digits ${n}`, "1234567890123".slice(0, n) + " x" + "9".repeat(n) + "a" + "0".repeat(n) + ".");
add("number scripts", "٠١٢٣٤٥٦٧٨٩ ०१२३४५ ０１２３４ ²³¹ ½¾ Ⅻⅻ 𝟘𝟙𝟚 ①②③ 〇一二 𐒠𐒡");
add("numbers mixed", "3.14159 1,000,000 1e-10 0x1F 12ab34 v2.0.1 192.168.0.1 2024-01-31T12:00:00Z $1,234.56 -42");
add("cjk", "漢字かなカナ한글 中文，标点。全角ＡＢＣ半角ｱｲｳ");
add("arabic", "السلام عليكم ورحمة الله وبركاته، مَرْحَبًا بِكُمْ");
add("devanagari", "नमस्ते दुनिया क्षत्रिय ज्ञान श्री");
add("emoji zwj", "👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 ❤️‍🔥 🧑🏿‍🤝‍🧑🏻 👍🏻👍🏼👍🏽👍🏾👍🏿 🇺🇸🇫🇷 1️⃣ #️⃣ 😀😃😄");
add("emoji words", "hello👋world 👋 hello ✨magic✨ a😀b");
add("combining marks", "e\u0301 a\u0308\u0301 \u0301alone x \u0301 1\u0301 A\u0301B \u0301\u0302\u0303 Z\u0335\u0336a\u0337 ñ vs n\u0303");
add("marks o200k", "ÉCOLE\u0301 \u0301ABC abc\u0301DEF A\u0301b \u0303\u0303x ǅungla ǅ ᾈᾉ ʰʱʲ ʰA Aʰ aʰ ꜰꜱ");
add("case classes", "HELLOworld helloWORLD HeLLo ABCdefGHI ǄǅǆDžDZ xĲx ΣίσυφοςΣ İstanbul ﬁﬂ");
add("whitespace runs", "a  b   c    d \n  \n\n   \n  e\t\tf \t \n\t g   ");
add("trailing spaces", "line one   \nline two\t\n   \n");
add("crlf", "a\r\nb\r\n\r\nc \r\n d\r\r\n\n\re");
add("only spaces", "     ");
add("only newlines", "\n\n\n");
add("space then newline", " \n");
add("tabs", "\tint x;\n\t\treturn x;\n");
add("unicode spaces", "a\u00a0b\u3000c\u2028d\u2029e\u0085f\u180eg\ufeffh\u200bi\u2009j\u202fk\u205fl\u1680m  \u00a0 n");
add("unicode spaces runs", "\u00a0\u00a0x \u3000\u3000 y\u0085\u0085z \u2028\n\u2029 \u180e\u180e ab\ufeff\ufeff \u200b ");
add("slash o200k", "path/to/file ./a/b/ http://x.com/y// a /\n/ b!/\n/");
add("punctuation", "!!! ... ?!? ;;; ::: ((()))[]{} <<>> --- ___ *** ### @@@ $$$ %%% ^^^ &&& ||| ~~~ ``` \"\"\" '''");
add("punct newline", "end.\n\nNext!\r\n\r\n  (x)\n");
add("code cpp", "#include <vector>\nint main(int argc, char** argv) {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;  // double\n  return v.size() > 2 ? 0 : 1;\n}\n");
add("code python", "def f(x: int) -> str:\n    '''Docstring.'''\n    if x >= 10:\n        return f\"{x:>8}\"\n    return str(x)\n\nprint(f(3))\n");
add("json", '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi!\\n"}], "max_tokens": 128, "n": 1, "temperature": 0.7}');
add("html", "<div class=\"a\"><p>Hello&nbsp;<b>world</b></p><!-- c --></div>");
add("long word a", "a".repeat(3000));
add("long word space", " " + "x".repeat(2000) + " " + "Ab".repeat(700));
add("long digits", "7".repeat(1000));
add("long spaces", " ".repeat(1500) + "x" + "\n".repeat(300));
add("long punct", "-".repeat(1200) + "=".repeat(500));
add("long base64", Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919 + 13) % 256)).toString("base64"));
add("long cjk", "的".repeat(800) + "一二三".repeat(200));
add("unicode 15 16 letters", [0x11f04, 0x11f05, 0x1c89, 0x1c8a, 0xa7cb, 0xa7cc, 0xa7dc, 0x10d50, 0x10d70, 0x11380, 0x11381, 0x1e5d0, 0x16d40, 0x16d63, 0x2ebf0, 0x31350, 0x1e4d0, 0x10EC2, 0x1df25]
  .map((c) => "a" + cp(c) + "b " + cp(c) + "1 " + cp(c) + cp(c) + " ").join(""));
add("unicode 17 unassigned in 16", [0x1e6c0, 0xa7ce, 0x10940, 0x11db0, 0x16ea0, 0x1f8d0].map((c) => "a" + cp(c) + "b " + cp(c) + " ").join(""));
add("format chars", "a\u200db a\u200cb a\u2060b a\u00adb a\u061cb a\u200eb");
add("private use and noncharacters", "a\ue000b \uf8ff \u{f0000} \ufdd0 \uffff \u{10ffff}x");
add("control chars", "a\u0000b\u0001c\u001fd\u007fe\u0080f\u009f");
add("natural", readFileSync(naturalPath, "utf8"));
for (const [i, line] of readFileSync(naturalPath, "utf8").split("\n").entries()) add(`natural line ${i + 1}`, line);

// ---- every code point in context, one case per block of 256 ----
// Blocks that are entirely unassigned or private use (in node's own, newer, Unicode) are
// skipped: their code points have no class in Unicode 16 either.
const assigned = /[^\p{Cn}\p{Co}\p{Cs}]/u;
for (let block = 0; block < 0x1100; block++) {
  let any = false;
  for (let c = block * 256; c < block * 256 + 256 && !any; c++) any = assigned.test(cp(c));
  if (!any) continue;
  let s = "";
  for (let c = block * 256; c < block * 256 + 256; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const ch = cp(c);
    s += "a" + ch + "A" + ch + " " + ch + "1" + ch + "'s" + ch + "\n" + ch + "  ";
  }
  add(`block ${block.toString(16)}`, s);
}

// ---- random strings over a pool of tricky characters ----
const pool = [
  ..."aAbBzZ", "é", "É", "ß", "ǅ", "ʰ", "ª", "中", "の", "ア", "ー", "한", "ا", "ि", "्", "\u0301", "\u0903", "\u20dd",
  ..."0123456789", "٣", "²", "Ⅻ", "½",
  " ", " ", " ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u0085", "\u2028", "\u180e", "\ufeff", "\u200b",
  ..."'''.,;:!?-_/\\\"()[]{}<>@#$%^&*+=|~`", "’", "…", "—", "😀", "👍🏽", "\u200d", "️",
  "'s", "'S", "'ll", "'VE", "'re", "'d", "'m", "'t",
];
for (let i = 0; i < 4000; i++) {
  const n = Math.floor(rnd() * 24);
  let s = "";
  for (let k = 0; k < n; k++) s += pick(pool);
  add(`random ${i}`, s);
}
// Random text made of longer runs, like real documents.
for (let i = 0; i < 200; i++) {
  let s = "";
  const n = 20 + Math.floor(rnd() * 200);
  for (let k = 0; k < n; k++) {
    const kind = rnd();
    const len = 1 + Math.floor(rnd() * 8);
    const c = pick(pool);
    s += kind < 0.6 ? c.repeat(len) : c;
  }
  add(`random runs ${i}`, s);
}

function fnv(ids) {
  let h = 0xcbf29ce484222325n;
  const P = 0x100000001b3n;
  for (const id of ids) {
    for (let b = 0; b < 4; b++) {
      h ^= BigInt((id >>> (8 * b)) & 0xff);
      h = (h * P) & 0xffffffffffffffffn;
    }
  }
  return h.toString(16).padStart(16, "0");
}

const encs = { cl100k_base: get_encoding("cl100k_base"), o200k_base: get_encoding("o200k_base") };
const out = [];
for (const c of cases) {
  const rec = { name: c.name, text: Buffer.from(c.text, "utf8").toString("base64") };
  for (const [name, enc] of Object.entries(encs)) {
    const ids = Array.from(enc.encode(c.text, [], []));
    rec[name] = { count: ids.length, fnv: fnv(ids) };
    if (ids.length <= 256) rec[name].ids = ids;
  }
  out.push(JSON.stringify(rec));
}
for (const enc of Object.values(encs)) enc.free();
writeFileSync(outPath, out.join("\n") + "\n");
console.log(`oracle: ${cases.length} cases written to ${outPath}`);
