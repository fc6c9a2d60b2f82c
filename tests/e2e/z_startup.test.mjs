// Scenario z: start-up (issue 9, points 3, 4, 6).
//
// 1. One process per data directory: a second chatd on a data dir in use
//    refuses with one fatal line naming the directory, --data-dir and the
//    holder's pid, and the first one's answer completes untouched; the lock
//    goes with the process (SIGTERM or SIGKILL).
// 2. Start-up failures (port in use, CHATD_PORT=abc, --port abc, a read-only
//    data dir / database, an unresolvable --host) exit non-zero, say what
//    failed in one line, and leave nothing behind.
// 3. Flags compose: --host localhost, scripts/run.sh with --data-dir,
//    $CHATD_DATA_DIR or its ./data default, and --help without the source
//    tree's path.
//
// Every wait is for a condition with a deadline; whatever is spawned is killed
// in a finally block and every temporary directory is removed.

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm, chmod, chown, readdir, readFile, mkdir, copyFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import {
  startChatd, chatdBin, waitFor, createSession, send, getContent, waitTerminal, ON_POSTGRES } from './support/chatd.mjs';
import { assertRefused, assertStarted } from './support/auth.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const RUN_SH = path.join(REPO, 'scripts', 'run.sh');
const SLOW = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '200', '--sim-max-tokens', '200'];
const FAST = ['--sim-tokens-per-second', '0', '--sim-min-tokens', '200', '--sim-max-tokens', '200'];
const TIMEOUT = 60000;
const READY_RE = /chatd listening on (http:\/\/\S+)\r?\n/;
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

const live = new Set();
process.on('exit', () => {
  for (const proc of live) {
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
  }
});

/** A fresh temporary directory (mode 0700); the caller removes it. */
async function tempDir(prefix = 'chatd-z-') {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * Runs `command ...argv` (cwd, process.env minus every CHATD_* variable plus
 * env; null removes) and resolves at the first of: it exits
 * ({ outcome: 'exited' }), it prints "chatd listening on URL" ({ outcome:
 * 'listening', baseUrl }; onListening(baseUrl) runs, then SIGTERM and the exit
 * is awaited: stopCode/stopSignal), or the deadline ({ outcome: 'timeout' };
 * killed). Always with { code, signal, stdout, stderr, argv } — the shape
 * assertRefused / assertStarted read. startOutcome() cannot be used where the
 * test chooses the data dir or leaves --port out, so this is its sibling.
 */
async function runOutcome(command, argv, { env = {}, cwd, timeoutMs = 30000, onListening } = {}) {
  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CHATD_')) childEnv[k] = v;
  }
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v === null) delete childEnv[k]; else childEnv[k] = String(v);
  }
  const proc = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv, cwd });
  live.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c) => { stdout += c.toString('utf8'); });
  proc.stderr.on('data', (c) => { stderr += c.toString('utf8'); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { live.delete(proc); resolve({ code, signal }); }));
  const closed = new Promise((resolve) => proc.on('close', resolve)); // stdio drained
  const spawnError = new Promise((resolve) => proc.on('error', (err) => resolve(err)));
  const result = { argv: [command, ...argv], pid: proc.pid };
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await Promise.race([
        exited.then((e) => ({ outcome: 'exited', ...e })),
        spawnError.then((err) => ({ outcome: 'spawn-error', message: err.message })),
        new Promise((resolve) => setTimeout(() => resolve(null), 25)),
      ]);
      if (r) { Object.assign(result, r); break; }
      const m = READY_RE.exec(stdout);
      if (m) { Object.assign(result, { outcome: 'listening', baseUrl: m[1].replace(/\/+$/, '') }); break; }
      if (Date.now() >= deadline) { result.outcome = 'timeout'; break; }
    }
    if (result.outcome === 'exited') await closed;
    if (result.outcome === 'listening') {
      if (onListening) {
        try {
          result.value = await onListening(result.baseUrl);
        } catch (err) {
          result.listeningError = err;
        }
      }
      proc.kill('SIGTERM');
      let timer;
      const stop = await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(() => resolve(null), 15000); })]);
      clearTimeout(timer);
      if (stop === null) {
        proc.kill('SIGKILL');
        result.stopTimedOut = true;
      }
      const e = await exited;
      await closed;
      result.stopCode = e.code;
      result.stopSignal = e.signal;
    }
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  }
  result.stdout = stdout;
  result.stderr = stderr;
  if (result.listeningError) {
    result.listeningError.message += `\nstderr:\n${stderr.slice(-2000)}`;
    throw result.listeningError;
  }
  return result;
}

function describe(o) {
  return `argv: ${o.argv.join(' ')}\noutcome: ${o.outcome} ${o.message || ''}\nexit: ${o.code} ${o.signal}\nstdout: ${o.stdout.slice(0, 500)}\nstderr:\n${o.stderr.slice(-2000)}`;
}

/** A start-up failure logged by chatd: refused, and exactly one /fatal/ line, which is returned. */
function fatalLine(o, label) {
  assertRefused(o, label);
  const lines = o.stderr.split('\n').filter((l) => /fatal/.test(l));
  assert.equal(lines.length, 1, `${label}: expected exactly one fatal line, got ${lines.length}\n${describe(o)}`);
  return lines[0];
}

function assertNames(line, parts, label, o) {
  for (const p of parts) {
    assert.ok(line.includes(p), `${label}: the failure line does not name ${JSON.stringify(p)}: ${line}\n${describe(o)}`);
  }
}

/** Every entry of dir with its bytes: what a failed start must not change. */
async function snapshot(dir) {
  const out = {};
  for (const name of (await readdir(dir)).sort()) {
    const buf = await readFile(path.join(dir, name));
    out[name] = buf.toString('base64');
  }
  return out;
}

function idOf(name, flag) {
  return Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
}

// ---------------------------------------------------------------------------

test('z1: one chatd per data directory; the second refuses and the first answer is untouched; the lock goes with the process', { timeout: TIMEOUT }, async () => {
  const dataDir = await tempDir();
  let a;
  let failed = false;
  try {
    a = await startChatd({ dataDir, args: SLOW, name: 'chatd-z-A' });
    const session = await createSession(a, { title: 'lock' });
    const prompt = 'Explain why a data directory needs exactly one owner.';
    const { assistant_message: am } = await send(a, session.id, prompt);
    // An answer is being written when B tries its luck.
    await waitFor(async () => {
      const c = await getContent(a, am.id);
      return c.status === 'generating' && c.content.length > 0;
    }, { timeoutMs: 20000, message: 'A to be generating with some content stored' });

    const b = await runOutcome(chatdBin(), ['--port', '0', '--data-dir', dataDir, ...SLOW]);
    const line = fatalLine(b, 'B on the data dir A holds');
    assertNames(line, [dataDir, '--data-dir', `in use by another chatd (pid ${a.proc.pid})`], 'B on the data dir A holds', b);
    assert.doesNotMatch(b.stderr, /UNIQUE constraint|sqlite store/, `B must not have touched the database\n${describe(b)}`);
    const errorLines = b.stderr.split('\n').filter((l) => /\b(error|critical)\b/.test(l));
    assert.deepEqual(errorLines, [line], `B logs the one fatal line and no other error\n${describe(b)}`);

    // B's refusal came while A was still writing, and changed nothing of A's.
    const during = await getContent(a, am.id);
    assert.equal(during.status, 'generating', 'the answer ended before B was refused: the test proves nothing (machine too slow?)');
    assert.equal(readFileSync(path.join(dataDir, 'chatd.lock'), 'utf8'), `${a.proc.pid}\n`, 'the lock file still names A');

    const final = await waitTerminal(a, am.id, 40000);
    assert.equal(final.status, 'completed', `A's answer after B: ${JSON.stringify(final).slice(0, 300)}`);
    const hist = await a.api('GET', `/sessions/${session.id}/messages`);
    assert.equal(hist.status, 200, hist.text);
    assert.equal(hist.json.messages.length, 2);
    assert.equal(hist.json.messages[1].content, final.content);
    assert.equal(hist.json.messages[1].finish_reason, 'stop');
    assert.equal(hist.json.messages[1].error, null);
    const bad = a.stderrText().split('\n').filter((l) => /UNIQUE constraint|\berror\b|fatal/i.test(l));
    assert.deepEqual(bad, [], 'A logged errors while B tried to start');

    // SIGTERM releases the lock: the next chatd on the directory starts, and
    // (unthrottled, same prompt, same simulated model) writes the very same
    // answer, proving A's was whole and without duplication.
    const stopped = await a.stop();
    assert.deepEqual(stopped, { code: 0, signal: null }, 'A stops cleanly on SIGTERM');
    await a.restart({ args: FAST });
    assert.equal(readFileSync(path.join(dataDir, 'chatd.lock'), 'utf8'), `${a.proc.pid}\n`, 'the lock file names the new holder');
    const kept = await getContent(a, am.id);
    assert.equal(kept.status, 'completed');
    assert.equal(kept.content, final.content, 'the stored answer survived the restart as it was');
    const again = await createSession(a, { title: 'reference' });
    const { assistant_message: ref } = await send(a, again.id, prompt);
    const reference = await waitTerminal(a, ref.id, 30000);
    assert.equal(reference.status, 'completed');
    assert.equal(final.content, reference.content,
      `A's answer (${final.content.length} chars) differs from the same answer made without interference (${reference.content.length} chars)`);

    // SIGKILL leaves no stale lock: the file still names the dead pid, yet the next one starts.
    const killed = await a.kill9();
    assert.equal(killed.signal, 'SIGKILL');
    const deadPid = a.proc.pid;
    assert.equal(readFileSync(path.join(dataDir, 'chatd.lock'), 'utf8'), `${deadPid}\n`);
    await a.restart({ args: FAST });
    const health = await a.http('GET', '/healthz');
    assert.equal(health.status, 200, health.text);
    assert.equal((await getContent(a, am.id)).content, final.content);
  } catch (err) {
    failed = true;
    if (a) a.dumpStderr('z1 failed');
    throw err;
  } finally {
    if (a) await a.stop();
    if (!failed) await rm(dataDir, { recursive: true, force: true });
  }
});

test('z2: start-up failures say what failed in one line and leave nothing behind', { timeout: 4 * TIMEOUT }, async (t) => {
  await t.test('port in use', { timeout: TIMEOUT }, async () => {
    const parent = await tempDir();
    const blocker = net.createServer();
    try {
      await new Promise((resolve, reject) => {
        blocker.once('error', reject);
        blocker.listen(0, '127.0.0.1', resolve);
      });
      const { port } = blocker.address();
      const dataDir = path.join(parent, 'fresh', 'data');
      const o = await runOutcome(chatdBin(), ['--port', String(port), '--data-dir', dataDir]);
      const line = fatalLine(o, 'port in use');
      assertNames(line, ['127.0.0.1', String(port), '--port', 'Address already in use'], 'port in use', o);
      assert.equal(existsSync(path.join(parent, 'fresh')), false, `the data dir was (half-)created after the listen failed\n${describe(o)}`);
      assert.deepEqual(await readdir(parent), []);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      await rm(parent, { recursive: true, force: true });
    }
  });

  await t.test('CHATD_PORT=abc and --port abc', { timeout: TIMEOUT }, async () => {
    const parent = await tempDir();
    try {
      const dataDir = path.join(parent, 'data');
      const cases = [
        { label: 'CHATD_PORT=abc', argv: ['--data-dir', dataDir], env: { CHATD_PORT: 'abc' }, names: ['CHATD_PORT=abc'] },
        { label: '--port abc', argv: ['--port', 'abc', '--data-dir', dataDir], env: {}, names: ['--port', 'abc'] },
      ];
      for (const c of cases) {
        const o = await runOutcome(chatdBin(), c.argv, { env: c.env });
        assertRefused(o, c.label);
        // A parse error, printed before logging starts: one line says it all.
        const lines = o.stderr.split('\n').filter((l) => /abc/.test(l));
        assert.equal(lines.length, 1, `${c.label}: expected one line naming the value\n${describe(o)}`);
        assertNames(lines[0], c.names, c.label, o);
        assert.ok(o.stderr.split('\n').filter((l) => /fatal/.test(l)).length <= 1, `${c.label}: at most one fatal line\n${describe(o)}`);
        assert.equal(existsSync(dataDir), false, `${c.label}: the data dir was created\n${describe(o)}`);
      }
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  await t.test('unresolvable --host', { timeout: TIMEOUT }, async () => {
    const parent = await tempDir();
    try {
      const dataDir = path.join(parent, 'data');
      const o = await runOutcome(chatdBin(), ['--host', 'no-such-host.invalid', '--port', '0', '--data-dir', dataDir]);
      const line = fatalLine(o, 'unresolvable --host');
      assert.ok(line.includes('--host') || line.includes('no-such-host.invalid'), `unresolvable --host: ${line}\n${describe(o)}`);
      assert.equal(existsSync(dataDir), false, `the data dir was created\n${describe(o)}`);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  await t.test('read-only data dir and read-only database', { timeout: TIMEOUT, skip: ON_POSTGRES && 'about the SQLite file in the data dir' }, async () => {
    // Root ignores file modes: run chatd as nobody (setpriv, util-linux) then.
    let asUser = (argv) => [chatdBin(), argv];
    let nobody = null;
    if (IS_ROOT) {
      assert.ok(existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv'), 'setpriv (util-linux) is needed to drop root');
      nobody = { uid: idOf('nobody', '-u'), gid: idOf('nobody', '-g') };
      asUser = (argv) => ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', chatdBin(), ...argv]];
    }
    const parent = await tempDir();
    const dataDir = path.join(parent, 'data');
    try {
      await chmod(parent, 0o755); // nobody may reach the data dir
      const first = await startChatd({ dataDir, name: 'chatd-z-ro-setup' });
      const stop = await first.stop();
      assert.deepEqual(stop, { code: 0, signal: null });
      const dbFile = path.join(dataDir, 'chatd.sqlite3');
      const lockFile = path.join(dataDir, 'chatd.lock');
      assert.ok(existsSync(dbFile), 'the first start made the database');

      // (a) Everything read-only, the directory too: the lock file is the first thing written.
      for (const name of await readdir(dataDir)) await chmod(path.join(dataDir, name), 0o444);
      await chmod(dataDir, 0o555);
      let before = await snapshot(dataDir);
      let [cmd, argv] = asUser(['--port', '0', '--data-dir', dataDir]);
      let o = await runOutcome(cmd, argv);
      let line = fatalLine(o, 'read-only data dir');
      assertNames(line, [lockFile, '--data-dir'], 'read-only data dir', o);
      assert.deepEqual(await snapshot(dataDir), before, 'a refused start changed the read-only data dir');

      // (b) The directory (and lock) writable, the database files read-only and root's.
      await chmod(dataDir, 0o755);
      await chmod(lockFile, 0o644);
      if (nobody) {
        await chown(dataDir, nobody.uid, nobody.gid);
        await chown(lockFile, nobody.uid, nobody.gid);
      }
      for (const name of ['chatd.sqlite3', 'chatd.sqlite3-wal', 'chatd.sqlite3-shm']) {
        const f = path.join(dataDir, name);
        if (existsSync(f)) await chmod(f, 0o444);
      }
      const dbBefore = await readFile(dbFile);
      before = (await readdir(dataDir)).sort();
      [cmd, argv] = asUser(['--port', '0', '--data-dir', dataDir]);
      o = await runOutcome(cmd, argv);
      line = fatalLine(o, 'read-only database');
      assertNames(line, [dbFile, '--data-dir'], 'read-only database', o);
      assert.ok((await readFile(dbFile)).equals(dbBefore), 'the read-only database changed');
      // No -wal/-shm made beside it: they would keep failing after the fix.
      assert.deepEqual((await readdir(dataDir)).sort(), before, 'a refused start left files in the data dir');
      assert.equal(existsSync(path.join(dataDir, 'session.key')), false);
    } finally {
      // Give the tree back to its owner so it can be removed by anyone.
      await chmod(dataDir, 0o755).catch(() => {});
      await rm(parent, { recursive: true, force: true });
    }
  });
});

test('z3: flags compose: --host localhost, scripts/run.sh with --data-dir, $CHATD_DATA_DIR and ./data, --help', { timeout: 4 * TIMEOUT }, async (t) => {
  await t.test('--host localhost', { timeout: TIMEOUT }, async () => {
    const srv = await startChatd({ args: ['--host', 'localhost'], name: 'chatd-z-localhost' });
    try {
      assert.match(srv.baseUrl, /^http:\/\/localhost:\d+$/);
      const r = await srv.http('GET', '/healthz');
      assert.equal(r.status, 200, r.text);
      const port = new URL(srv.baseUrl).port;
      const r2 = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(r2.status, 200);
    } finally {
      await srv.stop();
      await srv.cleanup();
    }
  });

  const repoDataExisted = existsSync(path.join(REPO, 'data'));
  const elsewhere = await tempDir('chatd-z-cwd-');
  t.after(() => rm(elsewhere, { recursive: true, force: true }));

  /** Runs bash <script> args from another directory; checks it started and used dbDir. */
  async function runScript(label, script, args, env, dbDir, logPath) {
    const o = await runOutcome('bash', [script, ...args], {
      cwd: elsewhere,
      env: { CHATD_BIN: chatdBin(), ...env },
      onListening: async (baseUrl) => {
        assert.ok(existsSync(path.join(dbDir, 'chatd.sqlite3')), `${label}: no chatd.sqlite3 in ${dbDir}`);
        const r = await fetch(`${baseUrl}/healthz`);
        assert.equal(r.status, 200);
      },
    });
    assertStarted(o, label);
    assert.deepEqual([o.stopCode, o.stopSignal], [0, null], `${label}: exits 0 on SIGTERM (run.sh execs chatd)\n${describe(o)}`);
    assert.ok(o.stderr.includes(`sqlite store ${logPath} `), `${label}: the log does not name the store ${logPath}\n${describe(o)}`);
    assert.deepEqual(await readdir(elsewhere), [], `${label}: wrote into the caller's directory`);
    if (!repoDataExisted) assert.equal(existsSync(path.join(REPO, 'data')), false, `${label}: wrote into the repository's ./data`);
  }

  await t.test('run.sh --data-dir X', { timeout: TIMEOUT }, async () => {
    const x = await tempDir();
    try {
      await runScript('run.sh --data-dir X', RUN_SH, ['--data-dir', x, '--port', '0'], {}, x, path.join(x, 'chatd.sqlite3'));
    } finally {
      await rm(x, { recursive: true, force: true });
    }
  });

  await t.test('CHATD_DATA_DIR=Y run.sh', { timeout: TIMEOUT }, async () => {
    const y = await tempDir();
    try {
      await runScript('CHATD_DATA_DIR=Y run.sh', RUN_SH, ['--port', '0'], { CHATD_DATA_DIR: y }, y, path.join(y, 'chatd.sqlite3'));
    } finally {
      await rm(y, { recursive: true, force: true });
    }
  });

  // The default ./data is the repository's: rather than write there, run a
  // copy of run.sh in a throw-away tree with the same layout.
  await t.test('run.sh default ./data (a copy of run.sh in a scratch tree)', { timeout: TIMEOUT }, async () => {
    const tree = await tempDir();
    try {
      await mkdir(path.join(tree, 'scripts'));
      const script = path.join(tree, 'scripts', 'run.sh');
      await copyFile(RUN_SH, script);
      await runScript('run.sh default', script, ['--port', '0'], {}, path.join(tree, 'data'), 'data/chatd.sqlite3');
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  });

  await t.test('--help', { timeout: TIMEOUT }, async () => {
    const o = await runOutcome(chatdBin(), ['--help']);
    assert.deepEqual([o.outcome, o.code, o.signal], ['exited', 0, null], describe(o));
    assert.ok(o.stdout.includes('--web-dir'), `--help does not mention --web-dir\n${o.stdout}`);
    // The Usage line echoes argv[0], the path this test ran; the options must not name the tree.
    const options = o.stdout.split('\n').filter((l) => !l.startsWith('Usage:'));
    for (const p of new Set([REPO, '/work/main'])) {
      const shown = options.filter((l) => l.includes(p));
      assert.deepEqual(shown, [], `--help shows the source tree ${p} as a default`);
    }
  });
});
