// The official openai npm package, a real client, talking to the real
// llmproxy binary in front of the mock backend, all on 127.0.0.1.
//
// Run by `make check` (make node): LLMPROXY_BIN and MOCK_BIN name the binaries.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';

const LLMPROXY_BIN = process.env.LLMPROXY_BIN ?? './llmproxy';
const MOCK_BIN = process.env.MOCK_BIN ?? 'build/tests/mock_upstream';

const dir = mkdtempSync(join(tmpdir(), 'llmproxy-node-'));
let mock, proxy, mockAddr, client;

// Starts a program and resolves with its "listening on HOST:PORT" address,
// read from stdout or stderr (llmproxy logs to stderr); log() is all it said.
function start(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${seen}`)), 5000);
    const onData = (buf) => {
      seen += buf.toString();
      const m = seen.match(/listening on (\S+?)(,|\s|$)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, addr: m[1], log: () => seen });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${cmd} exited ${code}: ${seen}`)));
  });
}

async function mockGet(path) {
  const res = await fetch(`http://${mockAddr}${path}`);
  return res.json();
}

// Waits (with a deadline) until the mock reports request `id` in `state`.
async function waitState(id, state, ms = 3000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await fetch(`http://${mockAddr}/mock/request?id=${id}`);
    if (r.status === 200 && (await r.json()).state === state) return;
    if (Date.now() > deadline) throw new Error(`request ${id} never became ${state}`);
    await new Promise((r2) => setTimeout(r2, 5));
  }
}

before(async () => {
  mock = await start(MOCK_BIN, ['--listen', '127.0.0.1:0']);
  mockAddr = mock.addr;
  const cfg = join(dir, 'config.ini');
  writeFileSync(cfg, `[server]\nlisten = 127.0.0.1:0\n\n[backends.mock]\nurl = http://${mockAddr}\n`);
  proxy = await start(LLMPROXY_BIN, ['-c', cfg]);
  client = new OpenAI({ apiKey: 'sk-test', baseURL: `http://${proxy.addr}/v1`, maxRetries: 0 });
});

after(() => {
  proxy?.child.kill('SIGTERM');
  mock?.child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('streams a chat completion token by token', async () => {
  const stream = await client.chat.completions.create(
    { model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'X-Mock-Tokens': '8', 'X-Mock-Delay-Ms': '40' } },
  );
  let text = '';
  const arrivals = [];
  let finish = null;
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta?.content;
    if (delta) {
      text += delta;
      arrivals.push(Date.now());
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, ' tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8');
  assert.equal(finish, 'stop');
  // Tokens reached the SDK as they were made, not all at the end.
  assert.ok(arrivals.at(-1) - arrivals[0] >= 7 * 40 - 20, `arrivals ${arrivals}`);
});

test('a non-streamed completion with usage', async () => {
  const res = await client.chat.completions.create(
    { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'X-Mock-Tokens': '3' } },
  );
  assert.equal(res.choices[0].message.content, ' tok1 tok2 tok3');
  assert.equal(res.usage.completion_tokens, 3);
});

test('a stream the backend cuts raises an error, not a short answer', async () => {
  const stream = await client.chat.completions.create(
    { model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'X-Mock-Tokens': '10', 'X-Mock-Fail': 'close-mid', 'X-Mock-Fail-After': '3' } },
  );
  let text = '';
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  }, (err) => {
    assert.match(String(err.message), /backend closed the stream/);
    return true;
  });
  assert.equal(text, ' tok1 tok2 tok3');
});

test('proxy errors reach the SDK as APIError with status and message', async () => {
  await assert.rejects(
    client.chat.completions.create(
      { model: 'mock-model', messages: [] },
      { headers: { 'X-Mock-Fail': 'close-before-head' } },
    ),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, 502);
      assert.match(err.message, /backend closed the connection/);
      return true;
    },
  );
});

test('aborting the stream in the SDK stops the backend', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] },
    {
      headers: { 'X-Request-Id': 'node-abort', 'X-Mock-Tokens': '100', 'X-Mock-Delay-Ms': '50' },
      signal: controller.signal,
    },
  );
  let n = 0;
  try {
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content && ++n === 3) {
        controller.abort();
        break;
      }
    }
  } catch (err) {
    assert.equal(err.name, 'APIUserAbortError', String(err));
  }
  assert.equal(n, 3);
  await waitState('node-abort', 'aborted');
  const rec = await mockGet('/mock/request?id=node-abort');
  assert.ok(rec.tokens_sent < 20, `backend kept going: ${rec.tokens_sent} tokens`);
});

test('the access log names each request', async () => {
  const deadline = Date.now() + 3000;
  // id is the proxy's own (the usage record's); the client's X-Request-Id
  // follows as client_id.
  const want = /access id=[0-9a-f]{32} client_id=node-abort .*status=200 backend=mock .*stream=1 .*finish=client_abort/;
  while (!want.test(proxy.log())) {
    assert.ok(Date.now() < deadline, `no access line for node-abort in:\n${proxy.log()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
});
