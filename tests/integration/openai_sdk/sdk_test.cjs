// A real client nobody here wrote: the official `openai` npm package against `floodgate sim`.
// Usage: node sdk_test.cjs <floodgate binary> <npm prefix holding node_modules/openai>
// Exits non-zero (with a message) on the first disagreement.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const readline = require('node:readline');

const [bin, npmPrefix] = process.argv.slice(2);
if (!bin || !npmPrefix) {
  console.error('usage: node sdk_test.cjs <floodgate> <npm prefix>');
  process.exit(2);
}
const OpenAI = require(path.resolve(npmPrefix, 'node_modules', 'openai'));
const KEY = 'sk-sdk-test';
const children = [];

function startSim(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['sim', '--port', '0', '--api-key', KEY, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const timer = setTimeout(() => reject(new Error('sim did not print its URL in 10 s')), 10000);
    child.on('error', reject);
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
  });
}

function wav(seconds, rate = 8000) {
  const samples = Math.round(seconds * rate);
  const b = Buffer.alloc(44 + samples * 2);
  b.write('RIFF', 0); b.writeUInt32LE(36 + samples * 2, 4); b.write('WAVE', 8);
  b.write('fmt ', 12); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(rate * 2, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34);
  b.write('data', 36); b.writeUInt32LE(samples * 2, 40);
  return b;
}

async function main() {
  const base = await startSim(['--embedding-dim', '64']);
  const client = new OpenAI({ apiKey: KEY, baseURL: base, maxRetries: 0 });

  const chat = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 30,
  });
  assert.equal(chat.object, 'chat.completion');
  assert.ok(chat.choices[0].message.content.length > 0);
  assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);
  console.log('chat ok:', JSON.stringify(chat.choices[0].message.content));

  // Streaming: the SDK's SSE parser assembles the same kind of answer, usage last.
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 30,
    stream: true, stream_options: { include_usage: true },
  });
  let streamed = '';
  let streamUsage = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) streamed += c.delta.content || '';
    if (chunk.usage) streamUsage = chunk.usage;
  }
  assert.ok(streamed.length > 0);
  assert.equal(streamUsage.completion_tokens, Math.ceil(Buffer.byteLength(streamed) / 4));
  console.log('stream ok:', JSON.stringify(streamed));

  // withResponse exposes the headers the SDK saw.
  const { response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
    .withResponse();
  assert.match(response.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
  assert.ok(response.headers.get('x-ratelimit-remaining-requests') !== null);

  // The SDK asks for base64 by default and decodes it.
  const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
  assert.equal(emb.data.length, 2);
  assert.equal(emb.data[0].embedding.length, 64);
  assert.ok(emb.data[0].embedding.every((x) => Number.isFinite(x)));
  const floats = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one', encoding_format: 'float', dimensions: 8 });
  assert.equal(floats.data[0].embedding.length, 8);
  console.log('embeddings ok');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'floodgate-sdk-'));
  const audio = path.join(dir, 'speech.wav');
  fs.writeFileSync(audio, wav(3.5));
  const tr = await client.audio.transcriptions.create({ file: fs.createReadStream(audio), model: 'whisper-1' });
  assert.ok(tr.text.length > 0);
  const verbose = await client.audio.transcriptions.create({
    file: fs.createReadStream(audio), model: 'whisper-1', response_format: 'verbose_json',
  });
  assert.equal(verbose.duration, 3.5);
  for (const s of verbose.segments) assert.ok(s.start >= 0 && s.end <= 3.5 && s.start <= s.end);
  const srt = await client.audio.transcriptions.create({ file: fs.createReadStream(audio), model: 'whisper-1', response_format: 'srt' });
  assert.match(String(srt), /^1\n00:00:00,000 --> /);
  fs.rmSync(dir, { recursive: true });
  console.log('transcription ok:', JSON.stringify(tr.text.slice(0, 40)));

  const wrong = new OpenAI({ apiKey: 'sk-not-the-key', baseURL: base, maxRetries: 0 });
  await assert.rejects(
    wrong.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof OpenAI.AuthenticationError && err.status === 401 && err.code === 'invalid_api_key',
  );
  console.log('401 -> AuthenticationError ok');

  const limitedBase = await startSim(['--rpm', '1']);
  const limited = new OpenAI({ apiKey: KEY, baseURL: limitedBase, maxRetries: 0 });
  await limited.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  await assert.rejects(
    limited.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof OpenAI.RateLimitError && err.status === 429 && err.code === 'rate_limit_exceeded' &&
      err.type === 'requests' && /Rate limit reached for gpt-4o-mini/.test(err.message) &&
      Number(err.headers['retry-after']) >= 1,
  );
  console.log('429 -> RateLimitError ok');

  const quotaBase = await startSim(['--quota-tokens', '1']);
  const broke = new OpenAI({ apiKey: KEY, baseURL: quotaBase, maxRetries: 0 });
  await broke.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  await assert.rejects(
    broke.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err instanceof OpenAI.RateLimitError && err.code === 'insufficient_quota',
  );
  console.log('insufficient_quota ok');
}

const watchdog = setTimeout(() => {
  console.error('timed out');
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}, 60000);

main().then(
  () => {
    for (const c of children) c.kill('SIGTERM');
    clearTimeout(watchdog);
    console.log('all SDK checks passed');
  },
  (err) => {
    console.error('FAILED:', err && err.stack ? err.stack : err);
    for (const c of children) c.kill('SIGTERM');
    clearTimeout(watchdog);
    process.exitCode = 1;
  },
);
