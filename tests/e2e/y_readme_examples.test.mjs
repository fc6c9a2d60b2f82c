// Scenario y: the README's examples run as written. The ```sh blocks of its
// `## API` section and the three `--auth` blocks of `## Authentication` are
// taken from README.md and run with `bash -euo pipefail` against a fresh chatd,
// and every result they print is checked.
//
// The only changes made to a block: `http://127.0.0.1:8080` becomes the test's
// chatd, and in an auth block the line `bash scripts/run.sh ARGS &` becomes
// `$CHATD_BIN --port 0 --data-dir <tmp> ARGS &` (the block's own wait for
// /healthz then runs as written). A preamble sends bash's xtrace (`set -x`,
// PS4 `+@@ `) to stdout, so the transcript shows each command followed by
// what it printed and every variable the block sets; stderr must stay empty
// (no curl progress meter, no error). Every wait is for a condition with a
// deadline; the README's own loops are bounded.

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withChatd, chatdBin, waitFor, utf8 } from './support/chatd.mjs';
import { parseSse, contiguousBytes } from './support/sse.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const README = path.resolve(HERE, '../../README.md');
const README_URL = 'http://127.0.0.1:8080';
const ID = /^(ses|msg)_[0-9A-Za-z]+$/;

// ---------------------------------------------------------------------------
// Extracting the blocks.

/** The text of `## heading` up to the next `## ` heading. */
function section(md, heading) {
  const lines = md.split('\n');
  const start = lines.findIndex((l) => l.trim() === `## ${heading}`);
  assert.notEqual(start, -1, `README.md has no "## ${heading}" section`);
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end === -1) end = lines.length;
  return lines.slice(start + 1, end).join('\n');
}

/** The contents of every ```sh fenced block in text. */
function shBlocks(text) {
  const blocks = [];
  const re = /^```sh\n([\s\S]*?)^```$/gm;
  let m;
  while ((m = re.exec(text)) !== null) blocks.push(m[1]);
  return blocks;
}

function readmeBlocks() {
  const md = readFileSync(README, 'utf8');
  const api = shBlocks(section(md, 'API'));
  assert.equal(api.length, 1, 'the API section has one sh block');
  const auth = {};
  for (const block of shBlocks(section(md, 'Authentication'))) {
    const m = /^bash scripts\/run\.sh --auth (\S+)/m.exec(block);
    if (m) {
      assert.equal(auth[m[1]], undefined, `two blocks start chatd with --auth ${m[1]}`);
      auth[m[1]] = block;
    }
  }
  for (const mode of ['jwt', 'api-keys', 'trusted-header']) {
    assert.ok(auth[mode], `the Authentication section has a block starting chatd with --auth ${mode}`);
  }
  return { api: api[0], auth };
}

/** Replaces the README's address; the block must use it and no other port. */
function withUrl(block, replacement) {
  assert.ok(block.includes(README_URL), `block does not use ${README_URL}:\n${block}`);
  const out = block.split(README_URL).join(replacement);
  assert.doesNotMatch(out, /:8080\b/, 'the block names port 8080 other than as http://127.0.0.1:8080');
  return out;
}

// ---------------------------------------------------------------------------
// Running a block.

const PREAMBLE = [
  'exec 3>&1',
  'BASH_XTRACEFD=3',
  "PS4='+@@ '",
  'set -x',
  '',
].join('\n');

/** The environment of the block: no CHATD_* (chatd reads them) and no proxy for curl. */
function blockEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('CHATD_')) continue;
    if (/^(https?|all|no)_proxy$/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * Runs script with `bash -euo pipefail` in cwd; kills it (and fails) after
 * timeoutMs. Resolves { code, signal, stdout, stderr, ms }.
 */
function runBash(script, { cwd, env, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const proc = spawn('bash', ['-euo', 'pipefail', '-c', PREAMBLE + script], {
      cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    const out = [];
    const err = [];
    proc.stdout.on('data', (c) => out.push(c));
    proc.stderr.on('data', (c) => err.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutMs);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const r = {
        code, signal, ms: Date.now() - started,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (timedOut) {
        reject(new Error(`the block did not finish within ${timeoutMs} ms\n${transcriptTail(r)}`));
      } else {
        resolve(r);
      }
    });
  });
}

function transcriptTail(r) {
  const cut = (s, n) => (s.length > n ? `…${s.slice(-n)}` : s);
  return `----- stdout (transcript, tail) -----\n${cut(r.stdout, 6000)}\n----- stderr -----\n${cut(r.stderr, 3000)}`;
}

/** On a failed check: the transcript's tail, unless the message already has it. */
function showTranscript(r, err) {
  if (!String(err?.message).includes('----- stdout (transcript')) console.error(`[e2e] README block transcript:\n${transcriptTail(r)}`);
}

/** Asserts the block exited 0 and wrote nothing to stderr (no progress meter, no error). */
function assertClean(r, label) {
  assert.equal(r.code, 0, `${label}: the block exited with ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}\n${transcriptTail(r)}`);
  assert.doesNotMatch(r.stderr, /% Total|% Received|Xferd|Dload/, `${label}: curl printed a progress meter\n${transcriptTail(r)}`);
  assert.equal(r.stderr, '', `${label}: the block wrote to stderr\n${transcriptTail(r)}`);
}

/**
 * The transcript as steps { trace, output }: each xtrace line (the command as
 * run, without the `+@@ ` prefix) and what was printed before the next one.
 */
function steps(stdout) {
  const re = /\++@@ ([^\n]*)\n/g;
  const list = [];
  let last = null;
  let pos = 0;
  let m;
  while ((m = re.exec(stdout)) !== null) {
    if (last) last.output += stdout.slice(pos, m.index);
    else if (m.index > 0) list.push({ trace: '', output: stdout.slice(0, m.index) });
    last = { trace: m[1], output: '' };
    list.push(last);
    pos = re.lastIndex;
  }
  if (last) last.output += stdout.slice(pos);
  return list;
}

/**
 * Reads a transcript in order. next(re, label) finds the next command whose
 * trace matches re and returns what it printed (for `a | b`, whose two traces
 * come in either order, the output after them); value(name) is the last value
 * the block assigned to a variable.
 */
function reader(r, label) {
  const list = steps(r.stdout);
  let at = 0;
  const fail = (msg) => assert.fail(`${label}: ${msg}\n${transcriptTail(r)}`);
  return {
    list,
    next(re, what) {
      const i = list.findIndex((s, k) => k >= at && re.test(s.trace));
      if (i === -1) fail(`no command matching ${re} (${what}) after step ${at}`);
      let k = i;
      while (k < list.length - 1 && list[k].output === '') k += 1;
      at = i + 1;
      return { trace: list[i].trace, output: list[k].output };
    },
    value(name) {
      const re = new RegExp(`^${name}=(.*)$`);
      const hits = list.filter((s) => re.test(s.trace));
      if (hits.length === 0) fail(`the block never set ${name}`);
      let v = re.exec(hits[hits.length - 1].trace)[1];
      if (/^'.*'$/.test(v)) v = v.slice(1, -1);
      return v;
    },
    fail,
  };
}

function json(out, label) {
  try {
    return JSON.parse(out);
  } catch {
    return assert.fail(`${label}: not one JSON value: ${JSON.stringify(out.slice(0, 500))}`);
  }
}

function jsonLines(out, label) {
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => json(l, label));
}

/** SSE text -> { retry, events } with data parsed. */
function sse(out, label) {
  const p = parseSse(out);
  const events = p.events.map((e) => {
    let data;
    try { data = JSON.parse(e.data); } catch { assert.fail(`${label}: event data is not JSON: ${e.data.slice(0, 300)}`); }
    return { ...e, data };
  });
  return { retry: p.retry, events };
}

const messageOf = (e) => (e.type === 'delta' ? e.data.message_id : e.data.id);
const cursorOffset = (cursor) => Number(/\.(\d+)$/.exec(cursor)?.[1]);

/**
 * Checks the events of one message in a stream: deltas gapless from
 * startOffset, each id the cursor after it, then a terminal status event with
 * the cursor at the end. Returns the bytes carried.
 */
function assertMessageEvents(events, messageId, startOffset, finalStatus, label) {
  const mine = events.filter((e) => messageOf(e) === messageId);
  assert.ok(mine.length > 0, `${label}: no event of ${messageId}`);
  const deltas = mine.filter((e) => e.type === 'delta');
  let bytes;
  try {
    bytes = contiguousBytes(deltas, startOffset);
  } catch (err) {
    assert.fail(`${label}: ${err.message}`);
  }
  let end = startOffset;
  for (const d of deltas) {
    end += utf8(d.data.text).length;
    assert.equal(d.id, `${messageId}.${end}`, `${label}: a delta's id is the cursor after it`);
  }
  const last = mine[mine.length - 1];
  assert.equal(last.type, 'status', `${label}: the message's last event is its status event`);
  assert.equal(last.data.status, finalStatus, `${label}: final status`);
  assert.equal(last.id, `${messageId}.${end}`, `${label}: the final status event carries the cursor at the end`);
  return bytes;
}

// ---------------------------------------------------------------------------

const { api: API_BLOCK, auth: AUTH_BLOCKS } = readmeBlocks();

test('y: prerequisites of the README examples are installed', () => {
  for (const tool of ['bash', 'curl', 'jq', 'openssl', 'sha256sum']) {
    const found = (process.env.PATH || '').split(':').some((d) => d && existsSync(path.join(d, tool)));
    assert.ok(found, `${tool} is not installed (the README's examples use it; scripts/setup.sh --tests installs it)`);
  }
});

test('y: the API examples run as written, in order, against a fresh chatd', async (t) => {
  await withChatd({ name: 'chatd-y-api' }, async (srv) => {
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'chatd-y-'));
    const r = await runBash(withUrl(API_BLOCK, srv.baseUrl), { cwd, env: blockEnv({}), timeoutMs: 120000 });
    await rm(cwd, { recursive: true, force: true });
    t.diagnostic(`API block ran in ${r.ms} ms`);
    try {
      assertClean(r, 'API block');
      const x = reader(r, 'API block');
      const at = (label) => `API block, ${label}`;

      // Create a session, change its system prompt, send with an Idempotency-Key, retry it.
      const S = x.value('S');
      const M = x.value('M');
      assert.match(S, /^ses_/, at('S is a session id'));
      assert.match(M, /^msg_/, at('M is a message id'));
      assert.match(x.value('KEY'), /^[0-9a-f-]{36}$/, at('KEY is a fresh UUID'));
      const patched = json(x.next(/-XPATCH .*\/sessions\/ses_\w+/, 'PATCH the session').output, at('PATCH'));
      assert.deepEqual(patched, { title: 'Demo', system_prompt: 'Be brief and kind.', model: 'simulated' },
        at('PATCH changes the system prompt, keeps the title and model'));
      const replay = json(x.next(/^jq -c .*\.user_message\.id/, 'the retried send').output, at('retried send'));
      assert.ok(Array.isArray(replay) && replay.length === 2, at(`the retried send prints two ids, got ${JSON.stringify(replay)}`));
      assert.match(String(replay[0]), ID, at('the replayed user message id'));
      assert.equal(replay[1], M, at('the retried send answers the same assistant message'));

      // Status and content while (most likely) generating.
      const status = json(x.next(/\/messages\/ses_\w+\/status$/, 'status').output, at('status'));
      assert.equal(typeof status.has_active_generation, 'boolean', at('status has has_active_generation'));
      if (status.has_active_generation) assert.equal(status.generating_message_id, M, at('status names M'));
      assert.ok(status.last_updated, at('status has last_updated'));
      const content = json(x.next(/\/messages\/msg_\w+\/content$/, 'content').output, at('content'));
      assert.equal(content.id, M, at('content of M'));
      assert.equal(typeof content.content, 'string', at('content'));
      assert.ok(['generating', 'completed'].includes(content.status), at(`content status ${content.status}`));
      assert.equal(content.cursor, `${M}.${utf8(content.content).length}`, at('the cursor marks the end of the content'));

      // Poll, then poll with next_since.
      const NEXT_SINCE = x.value('NEXT_SINCE');
      assert.ok(NEXT_SINCE && NEXT_SINCE !== 'null', at(`NEXT_SINCE is set (${NEXT_SINCE})`));
      const polled = json(x.next(/\/poll\?since=/, 'poll with since').output, at('poll with since'));
      assert.ok(x.list.some((s) => s.trace.replace(/'$/, '').endsWith(`/poll?since=${NEXT_SINCE}`)), at('the second poll passes next_since'));
      assert.ok(Array.isArray(polled.messages), at('poll answers messages'));
      assert.equal(typeof polled.has_more_generating, 'boolean', at('poll answers has_more_generating'));
      assert.ok(typeof polled.next_since === 'string' && polled.next_since.length > 0, at('poll answers a next_since'));
      for (const m of polled.messages) assert.equal(m.id, M, at('only M changed since next_since'));

      // Resume after the cursor: the rest of M, to its end.
      const CURSOR = x.value('CURSOR');
      assert.ok(CURSOR.startsWith(`${M}.`), at(`CURSOR is a cursor of M (${CURSOR})`));
      const resumed = sse(x.next(/\/messages\/msg_\w+\/stream -H 'Last-Event-ID: /, 'resumed stream').output, at('resumed stream'));
      assert.equal(resumed.retry, 1000, at('the stream starts with retry: 1000'));
      const rest = assertMessageEvents(resumed.events, M, cursorOffset(CURSOR), 'completed', at('resumed stream'));
      const firstDelta = resumed.events.find((e) => e.type === 'delta');
      if (firstDelta) assert.equal(firstDelta.data.offset, cursorOffset(CURSOR), at('the resumed stream starts right after the cursor'));
      assert.ok(resumed.events.every((e) => messageOf(e) === M), at('the message stream carries only M'));

      // Send and stream.
      const streamed = sse(x.next(/-H 'Accept: text\/event-stream'/, 'send and stream').output, at('send and stream'));
      assert.equal(streamed.retry, 1000, at('send and stream starts with retry: 1000'));
      const first = streamed.events[0];
      assert.ok(first && first.type === 'status' && first.data.status === 'generating', at('send and stream begins with a generating status event'));
      const A = first.data.id;
      assert.match(A, /^msg_/, at('the streamed answer has an id'));
      assert.notEqual(A, M, at('a new answer'));
      assert.ok(streamed.events.some((e) => e.type === 'delta'), at('send and stream carries event: delta'));
      const answerA = assertMessageEvents(streamed.events, A, 0, 'completed', at('send and stream'));
      assert.ok(answerA.length > 0, at('the streamed answer has text'));

      // The session stream from CURSOR: the rest of M, then A from its start; cut by --max-time.
      const sessionStep = x.next(/\/messages\/stream\?session_id=ses_\w+/, 'session stream');
      assert.match(sessionStep.trace, /--max-time \d+/, at('the session stream is bounded'));
      const session = sse(sessionStep.output, at('session stream'));
      assert.equal(session.retry, 1000, at('session stream starts with retry: 1000'));
      const restAgain = assertMessageEvents(session.events, M, cursorOffset(CURSOR), 'completed', at('session stream, M'));
      assert.ok(restAgain.equals(rest), at('the session stream carries the same rest of M as the message stream'));
      const againA = assertMessageEvents(session.events, A, 0, 'completed', at('session stream, A'));
      assert.ok(againA.equals(answerA), at('the session stream carries A as send-and-stream did'));
      const lastOfM = session.events.findLastIndex((e) => messageOf(e) === M);
      const firstOfA = session.events.findIndex((e) => messageOf(e) === A);
      assert.ok(lastOfM < firstOfA, at('M before A in the session stream'));

      // Cancel: a second send is refused while M2 generates; cancel 200, again 200, finished 409.
      const M2 = x.value('M2');
      assert.match(M2, /^msg_/, at('M2 is a message id'));
      assert.ok(![M, A].includes(M2), at('M2 is new'));
      const busy = json(x.next(/^jq -c \.error$|-d '\{"content":"Meanwhile"\}'/, 'second send while generating').output, at('second send'));
      assert.equal(busy.code, 'generation_in_progress', at('a second send while one generates is 409 generation_in_progress'));
      assert.equal(busy.active_message_id, M2, at('the 409 names the active message'));
      const c1 = json(x.next(new RegExp(`/messages/${M2}/cancel$`), 'cancel').output, at('cancel'));
      assert.equal(c1.status, 'cancelled', at('cancel answers the cancelled message'));
      assert.equal(c1.finish_reason, 'cancelled', at('cancel finish_reason'));
      assert.equal(typeof c1.content, 'string', at('cancel keeps the partial content'));
      const c2 = json(x.next(new RegExp(`/messages/${M2}/cancel$`), 'cancel again').output, at('cancel again'));
      assert.equal(c2.status, 'cancelled', at('cancelling again answers the cancelled message'));
      const c3 = json(x.next(new RegExp(`/messages/${M}/cancel$`), 'cancel a finished message').output, at('cancel finished'));
      assert.equal(c3.code, 'not_generating', at('cancelling a finished message is 409 not_generating'));

      // History, sessions, delete, health.
      const history = jsonLines(x.next(/\/sessions\/ses_\w+\/messages$/, 'history').output, at('history'));
      assert.deepEqual(history, [
        { role: 'user', status: 'completed' }, { role: 'assistant', status: 'completed' },
        { role: 'user', status: 'completed' }, { role: 'assistant', status: 'completed' },
        { role: 'user', status: 'completed' }, { role: 'assistant', status: 'cancelled' },
      ], at('history: three turns (the retry and the refused send stored nothing), the last cancelled'));
      const sessions = json(x.next(/\/sessions\?limit=20'?$/, 'sessions').output, at('sessions'));
      assert.deepEqual(sessions, { titles: ['Demo'], next: null }, at('the session list'));
      assert.equal(x.next(/-XDELETE .*\/sessions\/ses_\w+$/, 'delete').output.trim(), '204', at('delete answers 204'));
      assert.deepEqual(json(x.next(/\/healthz$/, 'healthz').output, at('healthz')), { status: 'ok' }, at('healthz'));
      assert.deepEqual(json(x.next(/\/readyz$/, 'readyz').output, at('readyz')), { status: 'ready' }, at('readyz'));

      // And the server agrees.
      assert.equal((await srv.api('GET', `/sessions/${S}`)).status, 404, 'the deleted session is gone');
      assert.equal((await srv.api('GET', '/sessions')).json.sessions.length, 0, 'no session left');
    } catch (err) {
      showTranscript(r, err);
      throw err;
    }
  });
});

// ---------------------------------------------------------------------------
// The auth blocks: the block starts (and stops) its own chatd.

const LAUNCH_FN = String.raw`
e2e_url() {
  local i
  for i in $(seq 400); do
    if grep -q '^chatd listening on ' "$E2E_DIR/stdout" 2>/dev/null; then
      sed -n 's/^chatd listening on \(http:[^ ]*\).*$/\1/p' "$E2E_DIR/stdout"
      return 0
    fi
    sleep 0.05
  done
  echo "chatd did not start within 20 s" >&2
  return 1
}
`;

/** Replaces `bash scripts/run.sh ARGS &` (with continuation lines) by the chatd under test. */
function launchLocally(block) {
  const re = /^bash scripts\/run\.sh((?:[^\n]*\\\n)*[^\n]*?)\s*&[ \t]*$/gm;
  const hits = block.match(re) || [];
  assert.equal(hits.length, 1, `the block starts chatd once with "bash scripts/run.sh … &":\n${block}`);
  return block.replace(re, (_all, args) => '"$E2E_CHATD" --port 0 --data-dir "$E2E_DIR/data"' +
    `${args} >"$E2E_DIR/stdout" 2>"$E2E_DIR/stderr" 3>&- & echo $! >"$E2E_DIR/pid"`);
}

function processGone(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return / Z /.test(stat.slice(stat.lastIndexOf(')')));
  } catch {
    return true;
  }
}

async function runAuthBlock(t, mode, { check }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), `chatd-y-${mode}-`));
  const script = LAUNCH_FN + withUrl(launchLocally(AUTH_BLOCKS[mode]), '$(e2e_url)');
  let r;
  let pid;
  let chatdStderr = '';
  let ok = false;
  try {
    r = await runBash(script, { cwd: dir, env: blockEnv({ E2E_CHATD: chatdBin(), E2E_DIR: dir }), timeoutMs: 60000 });
    pid = Number(await readFile(path.join(dir, 'pid'), 'utf8').catch(() => '0'));
    chatdStderr = await readFile(path.join(dir, 'stderr'), 'utf8').catch(() => '');
    t.diagnostic(`--auth ${mode} block ran in ${r.ms} ms`);
    assertClean(r, `--auth ${mode} block`);
    assert.ok(pid > 0, `--auth ${mode}: the block started chatd`);
    // The block ends with `kill $!`: chatd stops by itself.
    await waitFor(() => processGone(pid), { timeoutMs: 15000, message: `chatd (--auth ${mode}) to exit after the block's kill` });
    chatdStderr = await readFile(path.join(dir, 'stderr'), 'utf8').catch(() => '');
    assert.match(chatdStderr, new RegExp(`listening on .*\\(auth ${mode},`), `--auth ${mode}: chatd ran in that mode`);
    assert.doesNotMatch(chatdStderr, /^\S+ (error|critical) /m, `--auth ${mode}: chatd logged an error`);
    check(reader(r, `--auth ${mode} block`), chatdStderr);
    ok = true;
  } finally {
    if (pid > 0 && !processGone(pid)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (!ok) {
      if (r) console.error(`[e2e] README block transcript:\n${transcriptTail(r)}`);
      console.error(`[e2e] --auth ${mode} block failed; dir kept: ${dir}\n----- chatd stderr -----\n${chatdStderr.slice(-4000)}`);
    } else {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** The block's one API call answers the (empty) session list: the credential was accepted. */
function assertSessionList(x, mode) {
  const out = x.next(/\/api\/v1\/chat\/sessions$/, 'the authenticated request').output;
  assert.deepEqual(json(out, `--auth ${mode}`), { sessions: [], next: null },
    `--auth ${mode}: the request with the block's credential answers alice's (empty) session list`);
}

test('y: the jwt example runs as written', async (t) => {
  await runAuthBlock(t, 'jwt', {
    check(x) {
      assert.match(x.value('TOKEN'), /^[\w-]+\.[\w-]+\.[\w-]+$/, 'jwt: TOKEN is a compact JWT');
      const payload = JSON.parse(Buffer.from(x.value('TOKEN').split('.')[1], 'base64url').toString('utf8'));
      assert.equal(payload.sub, 'alice', 'jwt: the token names alice');
      assertSessionList(x, 'jwt');
    },
  });
});

test('y: the api-keys example runs as written', async (t) => {
  await runAuthBlock(t, 'api-keys', {
    check(x, chatdStderr) {
      assertSessionList(x, 'api-keys');
      assert.ok(x.list.some((s) => /^kill -HUP \d+$/.test(s.trace)), 'api-keys: the block sends SIGHUP to chatd');
      assert.doesNotMatch(chatdStderr, /reload failed/, 'api-keys: the SIGHUP reload did not fail');
    },
  });
});

test('y: the trusted-header example runs as written', async (t) => {
  await runAuthBlock(t, 'trusted-header', {
    check(x) {
      assertSessionList(x, 'trusted-header');
    },
  });
});
