// Real clients through `floodgate serve`: the official `openai` npm package and curl, each
// calling the gateway (in front of `floodgate sim`) and the sim directly; the answers must be
// the same. Then every file and stream the gateway wrote is searched for the upstream key.
// Usage: node serve_sdk_test.cjs <floodgate binary> <npm prefix holding node_modules/openai>
// Exits non-zero (with a message) on the first disagreement.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');
const readline = require('node:readline');

const [bin, npmPrefix] = process.argv.slice(2);
if (!bin || !npmPrefix) {
  console.error('usage: node serve_sdk_test.cjs <floodgate> <npm prefix>');
  process.exit(2);
}
const OpenAI = require(path.resolve(npmPrefix, 'node_modules', 'openai'));
// Distinctive, so that a search finds any copy of them.
const UPSTREAM_KEY = 'sk-upstream-4e7b9d0c2a61';
const CLIENT_KEY = 'fg-client-8d2f61';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'floodgate-serve-sdk-'));
const children = [];
const outputs = {};  // name -> what a child printed (stdout + stderr)

// Starts `floodgate <args>` in `dir`, resolving with its first stdout line (its base URL).
function start(name, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    outputs[name] = '';
    child.stderr.on('data', (d) => { outputs[name] += d; });
    const timer = setTimeout(() => reject(new Error(`${name} did not print its URL in 10 s: ${outputs[name]}`)), 10000);
    child.on('error', reject);
    const lines = readline.createInterface({ input: child.stdout });
    let first = true;
    lines.on('line', (line) => {
      outputs[name] += line + '\n';
      if (!first) return;
      first = false;
      clearTimeout(timer);
      resolve(line.trim());
    });
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

// The answer without what differs from call to call.
function comparable(x) {
  const j = JSON.parse(JSON.stringify(x));
  delete j.id;
  delete j.created;
  return j;
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(comparable(chunk));
  return chunks;
}

function curl(args) {
  return execFileSync('curl', ['-sS', '--max-time', '30', ...args], { encoding: 'utf8' });
}

// Chunks of a curl'd event stream, ids and times set aside.
function events(text) {
  return text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))
    .map((d) => (d === '[DONE]' ? d : comparable(JSON.parse(d))));
}

async function main() {
  const simBase = await start('sim', ['sim', '--port', '0', '--api-key', UPSTREAM_KEY, '--latency', 'none',
    '--fault-rate', '0', '--embedding-dim', '64'], {});
  const accessLog = path.join(dir, 'access.log');
  const gateway = start('gateway', ['serve', '--port', '0', '--upstream', simBase, '--access-log', accessLog,
    '--usage-db', path.join(dir, 'usage.sqlite')],
    { OPENAI_API_KEY: UPSTREAM_KEY, OPENAI_BASE_URL: '' });
  const gwBase = await gateway;
  assert.match(gwBase, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  const direct = new OpenAI({ apiKey: UPSTREAM_KEY, baseURL: simBase, maxRetries: 0 });
  const through = new OpenAI({ apiKey: CLIENT_KEY, baseURL: gwBase, maxRetries: 0 });

  // Chat.
  const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 30 };
  const { data: viaGw, response } = await through.chat.completions.create(chat).withResponse();
  assert.deepEqual(comparable(viaGw), comparable(await direct.chat.completions.create(chat)));
  assert.equal(response.headers.get('x-floodgate-lane'), 'interactive');
  assert.match(response.headers.get('x-request-id'), /^req_/);
  console.log('chat ok');

  // Streaming chat, usage asked for: the same chunks.
  const asked = { ...chat, stream: true, stream_options: { include_usage: true } };
  const streamedGw = await collect(await through.chat.completions.create(asked));
  const streamedDirect = await collect(await direct.chat.completions.create(asked));
  assert.deepEqual(streamedGw, streamedDirect);
  assert.ok(streamedGw[streamedGw.length - 1].usage.completion_tokens > 0);
  // Usage not asked for: the gateway asks upstream, adding the member before the closing
  // brace of the client's body as it is (the SDK indents its JSON), and hands the client the
  // stream without usage: the sim's stream for those very bytes, less the usage.
  const quiet = await collect(await through.chat.completions.create({ ...chat, stream: true }));
  assert.ok(quiet.every((c) => !('usage' in c)), JSON.stringify(quiet));
  const sdkBody = JSON.stringify({ ...chat, stream: true }, null, 2);
  const upstreamBody = sdkBody.slice(0, -1) + ',"stream_options":{"include_usage":true}}';
  const raw = await fetch(`${simBase}/chat/completions`, {
    method: 'POST', body: upstreamBody,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${UPSTREAM_KEY}` },
  });
  const expected = events(await raw.text()).filter((c) => c !== '[DONE]' && !(c.choices.length === 0 && c.usage))
    .map((c) => {
      const { usage, ...rest } = c;
      return rest;
    });
  assert.deepEqual(quiet, expected);
  console.log('streaming chat ok:', quiet.length, 'chunks');

  // Embeddings (the SDK asks for base64 and decodes it).
  const emb = { model: 'text-embedding-3-small', input: ['one', 'two'] };
  assert.deepEqual(await through.embeddings.create(emb), await direct.embeddings.create(emb));
  console.log('embeddings ok');

  // A transcription of speech made now.
  const audio = path.join(dir, 'speech.wav');
  execFileSync('espeak-ng', ['-s', '170', '-w', audio, 'The gateway passes this file through, piece by piece.']);
  for (const format of ['json', 'verbose_json', 'srt']) {
    const req = () => ({ file: fs.createReadStream(audio), model: 'whisper-1', response_format: format });
    const a = await through.audio.transcriptions.create(req());
    const b = await direct.audio.transcriptions.create(req());
    assert.deepEqual(a, b, format);
  }
  console.log('transcription ok');

  // An error: the same status, type, code and message.
  const bad = { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] };
  const errorOf = (p) => p.then(() => assert.fail('no error'), (e) => e);
  const [e1, e2] = [await errorOf(through.chat.completions.create(bad)), await errorOf(direct.chat.completions.create(bad))];
  assert.ok(e1 instanceof OpenAI.NotFoundError, String(e1));
  assert.deepEqual([e1.status, e1.type, e1.code, e1.message], [e2.status, e2.type, e2.code, e2.message]);
  console.log('error ok:', e1.status, e1.code);

  // curl: chat, a stream, an upload from a file.
  const curlPost = (base, key, body) => curl(['-N', `${base}/chat/completions`, '-H', `Authorization: Bearer ${key}`,
    '-H', 'Content-Type: application/json', '-d', JSON.stringify(body)]);
  assert.deepEqual(comparable(JSON.parse(curlPost(gwBase, CLIENT_KEY, chat))), comparable(JSON.parse(curlPost(simBase, UPSTREAM_KEY, chat))));
  assert.deepEqual(events(curlPost(gwBase, CLIENT_KEY, asked)), events(curlPost(simBase, UPSTREAM_KEY, asked)));
  const curlUpload = (base, key) => JSON.parse(curl([`${base}/audio/transcriptions`, '-H', `Authorization: Bearer ${key}`,
    '-F', `file=@${audio}`, '-F', 'model=whisper-1', '-F', 'response_format=verbose_json']));
  assert.deepEqual(curlUpload(gwBase, CLIENT_KEY), curlUpload(simBase, UPSTREAM_KEY));
  console.log('curl ok');

  const gwChild = children[1];
  const code = await stop(gwChild);
  assert.equal(code, 0, 'SIGTERM ends the gateway cleanly');
  // The upstream key is in no file of the gateway's folder and nothing it printed; the
  // client's key neither.
  const log = fs.readFileSync(accessLog, 'utf8');
  assert.equal(log.split('\n').filter((l) => l).length, 11, log);  // one line per call through the gateway
  for (const secret of [UPSTREAM_KEY, CLIENT_KEY]) {
    assert.ok(!outputs.gateway.includes(secret), 'the gateway printed a key');
    for (const f of fs.readdirSync(dir, { recursive: true })) {
      const p = path.join(dir, f);
      if (fs.statSync(p).isFile()) assert.ok(!fs.readFileSync(p).includes(secret), `${f} holds a key`);
    }
  }
  console.log('no key in', fs.readdirSync(dir).join(', '), 'or the gateway\'s output');
}

const watchdog = setTimeout(() => {
  console.error('timed out');
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}, 90000);

main().then(
  () => {
    for (const c of children) c.kill('SIGTERM');
    clearTimeout(watchdog);
    fs.rmSync(dir, { recursive: true, force: true });
    console.log('all gateway SDK checks passed');
  },
  (err) => {
    console.error('FAILED:', err && err.stack ? err.stack : err);
    for (const c of children) c.kill('SIGTERM');
    clearTimeout(watchdog);
    process.exitCode = 1;
  },
);
