// Starts the real chatd binary for end-to-end tests and talks to it over HTTP.
//
// startChatd() spawns `$CHATD_BIN --port 0 --data-dir <tmp> ...args`, waits (with
// a deadline) for the stdout line `chatd listening on http://127.0.0.1:PORT` and
// returns a handle: { baseUrl, proc, dataDir, api(), http(), url(), stream(),
// stop(), kill9(), restart(), stderrText() }. withChatd() wraps a test body:
// it prints chatd's stderr when the body throws and always stops the process.
// Every wait in here is for a condition with a deadline.

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, access } from 'node:fs/promises';
import { constants as fsConstants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStream, closeAllStreams } from './sse.mjs';

export const API_PREFIX = '/api/v1/chat';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_BIN = path.resolve(HERE, '../../../build/dev/bin/chatd');
const READY_RE = /chatd listening on (http:\/\/[^\s]+)/;
const STDERR_KEEP_BYTES = 4 * 1024 * 1024;

const live = new Set();
process.on('exit', () => {
  for (const proc of live) {
    try { proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

export function chatdBin() {
  return process.env.CHATD_BIN || DEFAULT_BIN;
}

/** True when the suite runs against PostgreSQL (ctest's e2e_pg_* tests). */
export const ON_POSTGRES = process.env.CHATD_E2E_STORE === 'postgres';
let databases = 0;

/**
 * The store arguments of a new chatd: none for SQLite (its data dir); under
 * CHATD_E2E_STORE=postgres, `--db` naming a fresh database in the test
 * cluster that ctest started (CHATD_TEST_PG_FILE holds its conninfo).
 */
export function storeArgs() {
  if (!ON_POSTGRES) return [];
  const file = process.env.CHATD_TEST_PG_FILE;
  if (!file) throw new Error('CHATD_E2E_STORE=postgres needs CHATD_TEST_PG_FILE: run the suite through ctest');
  const conninfo = readFileSync(file, 'utf8').trim();
  const db = `e2e_${process.pid}_${Date.now()}_${++databases}`;
  execFileSync('psql', [conninfo, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE "${db}"`]);
  return ['--db', `${conninfo} dbname=${db}`];
}

/** Polls predicate() until it returns a truthy value; returns that value. */
export async function waitFor(predicate, { timeoutMs = 10000, intervalMs = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  let lastValue;
  for (;;) {
    try {
      lastValue = await predicate();
      if (lastValue) return lastValue;
      lastError = undefined;
    } catch (err) {
      if (err && err.fatal) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError ? `; last error: ${lastError.stack || lastError}` : `; last value: ${short(lastValue)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${detail}`);
    }
    await delay(intervalMs);
  }
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function short(value) {
  let s;
  try { s = JSON.stringify(value); } catch { s = String(value); }
  if (s === undefined) s = String(value);
  return s.length > 500 ? `${s.slice(0, 500)}…` : s;
}

/**
 * One HTTP request. body: undefined (no body), a string or Buffer (sent as is,
 * Content-Type application/json unless headers say otherwise) or any other value
 * (JSON-encoded). Returns { status, headers, text, json } (json null if the body
 * is not JSON).
 */
export async function request(baseUrl, method, urlPath, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  const hasType = Object.keys(init.headers).some((k) => k.toLowerCase() === 'content-type');
  if (body !== undefined) {
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
    }
    if (!hasType) init.headers['Content-Type'] = 'application/json';
  }
  let res;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(baseUrl + urlPath, init);
      break;
    } catch (err) {
      // A keep-alive socket the server closed between requests: retry reads once.
      if (attempt === 0 && (method === 'GET' || method === 'HEAD')) continue;
      throw new Error(`${method} ${urlPath} failed: ${err.cause?.message || err.message}`);
    }
  }
  const text = await res.text();
  let json = null;
  try { json = text.length ? JSON.parse(text) : null; } catch { json = null; }
  return { status: res.status, headers: res.headers, text, json };
}

async function ensureExecutable(bin) {
  try {
    await access(bin, fsConstants.X_OK);
  } catch {
    throw new Error(`chatd binary not found or not executable: ${bin} (set CHATD_BIN)`);
  }
}

/**
 * Starts chatd. opts.args: extra CLI arguments; opts.dataDir: reuse a data dir;
 * opts.env: extra environment variables for the child, merged into
 * process.env (a value of undefined or null removes that variable).
 */
export async function startChatd({ args = [], dataDir, name = 'chatd', env } = {}) {
  const bin = chatdBin();
  await ensureExecutable(bin);
  const dir = dataDir || await mkdtemp(path.join(os.tmpdir(), 'chatd-e2e-'));
  const srv = {
    name,
    bin,
    args: [...args],
    // One database for the life of this handle, restarts included.
    storeArgs: args.includes('--db') ? [] : storeArgs(),
    env: env ? { ...env } : undefined,
    dataDir: dir,
    baseUrl: null,
    proc: null,
    exited: null,
    stderrChunks: [],
    stderrBytes: 0,
    generation: 0,
    nodeId: `${name}-${randomBytes(4).toString('hex')}`,
  };

  srv.stderrText = () => Buffer.concat(srv.stderrChunks).toString('utf8');
  srv.url = (p) => srv.baseUrl + p;
  srv.http = (method, p, body, headers) => request(srv.baseUrl, method, p, body, headers);
  srv.api = (method, p, body, headers) => request(srv.baseUrl, method, API_PREFIX + p, body, headers);
  srv.stream = (p, opts) => openStream(srv.baseUrl + API_PREFIX + p, opts);

  srv.launch = async () => {
    srv.generation += 1;
    const gen = srv.generation;
    // One node name per handle, kept across restarts: a restarted node takes
    // its answers back at once, as an operator's named node does.
    const node = srv.args.includes('--node-id') ? [] : ['--node-id', srv.nodeId];
    const argv = ['--port', '0', '--data-dir', srv.dataDir, ...node, ...srv.args, ...srv.storeArgs];
    let childEnv;
    if (srv.env) {
      childEnv = { ...process.env };
      for (const [k, v] of Object.entries(srv.env)) {
        if (v === undefined || v === null) delete childEnv[k]; else childEnv[k] = String(v);
      }
    }
    const proc = spawn(srv.bin, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...(childEnv ? { env: childEnv } : {}) });
    srv.proc = proc;
    live.add(proc);
    const note = Buffer.from(`\n----- [${srv.name} #${gen}] ${srv.bin} ${argv.join(' ')} -----\n`);
    srv.stderrChunks.push(note);
    srv.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        live.delete(proc);
        resolve({ code, signal });
      });
    });
    proc.stderr.on('data', (chunk) => {
      srv.stderrChunks.push(chunk);
      srv.stderrBytes += chunk.length;
      while (srv.stderrBytes > STDERR_KEEP_BYTES && srv.stderrChunks.length > 1) {
        srv.stderrBytes -= srv.stderrChunks.shift().length;
      }
    });
    let stdoutBuf = '';
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${srv.name} did not print "chatd listening on ..." within 20 s; stdout so far: ${short(stdoutBuf)}`));
      }, 20000);
      // Keep draining stdout for the whole life of the process so it never blocks.
      proc.stdout.on('data', (chunk) => {
        stdoutBuf += chunk.toString('utf8');
        if (stdoutBuf.length > 65536) stdoutBuf = stdoutBuf.slice(-65536);
        const m = READY_RE.exec(stdoutBuf);
        if (m) {
          clearTimeout(timer);
          resolve(m[1].replace(/\/+$/, ''));
        }
      });
      proc.on('error', (err) => { clearTimeout(timer); reject(err); });
      srv.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${srv.name} exited before it was ready (code ${code}, signal ${signal})`));
      });
    });
    try {
      srv.baseUrl = await ready;
    } catch (err) {
      try { proc.kill('SIGKILL'); } catch { /* gone */ }
      err.message += `\n----- chatd stderr -----\n${tail(srv.stderrText())}`;
      throw err;
    }
    return srv;
  };

  /** SIGTERM, wait for exit (deadline 10 s; SIGKILL after that). */
  srv.stop = async () => {
    const proc = srv.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return srv.exited && srv.exited;
    proc.kill('SIGTERM');
    let timer;
    const result = await Promise.race([
      srv.exited,
      new Promise((resolve) => { timer = setTimeout(() => resolve(null), 10000); }),
    ]);
    clearTimeout(timer);
    if (result === null) {
      srv.stopTimedOut = true;
      console.error(`[e2e] ${srv.name} did not exit within 10 s of SIGTERM; sending SIGKILL`);
      proc.kill('SIGKILL');
      return srv.exited;
    }
    return result;
  };

  /** kill -9 and wait until the process is gone. */
  srv.kill9 = async () => {
    const proc = srv.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return srv.exited;
    proc.kill('SIGKILL');
    return srv.exited;
  };

  /** Starts chatd again on the same data dir (after stop() or kill9()). */
  srv.restart = async ({ args } = {}) => {
    if (srv.proc && srv.proc.exitCode === null && srv.proc.signalCode === null) await srv.stop();
    if (args) srv.args = [...args];
    return srv.launch();
  };

  /** Prints the tail of chatd's stderr (for failures that do not throw out of withChatd). */
  srv.dumpStderr = (why = 'failure') => {
    console.error(`\n[e2e] ${why}; ${srv.name} data dir: ${srv.dataDir}`);
    console.error(`----- ${srv.name} stderr (last 200 lines) -----\n${tail(srv.stderrText())}\n----- end of stderr -----`);
    // CI can collect the whole log from $CHATD_E2E_ARTIFACTS.
    const dir = process.env.CHATD_E2E_ARTIFACTS;
    if (dir) {
      try {
        mkdirSync(dir, { recursive: true });
        const file = path.join(dir, `${srv.name}-${process.pid}-${Date.now()}.stderr.log`);
        writeFileSync(file, `${why}\ndata dir: ${srv.dataDir}\n${srv.stderrText()}`);
        console.error(`[e2e] full stderr written to ${file}`);
      } catch (err) {
        console.error(`[e2e] could not write artifacts to ${dir}: ${err.message}`);
      }
    }
  };

  srv.cleanup = async () => {
    await rm(srv.dataDir, { recursive: true, force: true });
  };

  await srv.launch();
  return srv;
}

function tail(text, lines = 200) {
  const all = text.split('\n');
  return all.length > lines ? all.slice(-lines).join('\n') : text;
}

/**
 * Runs body(srv) against a fresh chatd. On failure prints chatd's stderr and
 * keeps the data dir; always stops the process.
 */
export async function withChatd(opts, body) {
  const srv = await startChatd(opts);
  let failed = false;
  try {
    return await body(srv);
  } catch (err) {
    failed = true;
    srv.dumpStderr('test failed (data dir kept)');
    throw err;
  } finally {
    closeAllStreams();
    await srv.stop();
    if (!failed) await srv.cleanup();
  }
}

// ---------------------------------------------------------------------------
// Small domain helpers shared by the scenarios.

/**
 * Runs body(nodes) against `n` chatd nodes (node-A, node-B, …) with `args`,
 * all on one fresh database: several nodes on one store, for the e2e_pg_
 * variant. On failure prints every node's stderr and keeps the data dirs;
 * always closes the streams and stops every node (continuing one a test left
 * stopped with SIGSTOP first).
 */
export async function withNodes(n, args, body, { env } = {}) {
  const db = storeArgs();
  const nodes = [];
  let failed = false;
  try {
    for (let i = 0; i < n; i++) {
      nodes.push(await startChatd({ args: [...args, ...db], env, name: `node-${'ABCDEFGH'[i]}` }));
    }
    return await body(nodes);
  } catch (err) {
    failed = true;
    for (const node of nodes) node.dumpStderr('test failed (data dir kept)');
    throw err;
  } finally {
    closeAllStreams();
    for (const node of nodes) {
      if (node.proc && node.proc.exitCode === null && node.proc.signalCode === null) {
        try { node.proc.kill('SIGCONT'); } catch { /* gone */ }
      }
      await node.stop();
      if (!failed) await node.cleanup();
    }
  }
}

export const TERMINAL = new Set(['completed', 'error', 'cancelled']);

export async function createSession(srv, body = {}) {
  const r = await srv.api('POST', '/sessions', body);
  if (r.status !== 201) throw new Error(`create session: expected 201, got ${r.status} ${r.text}`);
  return r.json;
}

/** Sends a message; returns the 202 body { user_message, assistant_message }. */
export async function send(srv, sessionId, content, headers = {}) {
  const r = await srv.api('POST', `/sessions/${sessionId}/messages`, { content }, headers);
  if (r.status !== 202) throw new Error(`send: expected 202, got ${r.status} ${r.text}`);
  return r.json;
}

export async function getContent(srv, messageId) {
  const r = await srv.api('GET', `/messages/${messageId}/content`);
  if (r.status !== 200) throw new Error(`content of ${messageId}: expected 200, got ${r.status} ${r.text}`);
  return r.json;
}

/** Waits until the message is no longer generating; returns the content answer. */
export async function waitTerminal(srv, messageId, timeoutMs = 30000) {
  return waitFor(async () => {
    const c = await getContent(srv, messageId);
    return TERMINAL.has(c.status) ? c : null;
  }, { timeoutMs, intervalMs: 50, message: `message ${messageId} to reach a terminal status` });
}

/** Buffer of a string's UTF-8 bytes. */
export function utf8(s) {
  return Buffer.from(s, 'utf8');
}

export function isPrefix(prefix, whole) {
  const p = Buffer.isBuffer(prefix) ? prefix : utf8(prefix);
  const w = Buffer.isBuffer(whole) ? whole : utf8(whole);
  return p.length <= w.length && w.subarray(0, p.length).equals(p);
}

export function hasMultiByte(s) {
  return utf8(s).length > s.length || /[^\x00-\x7f]/.test(s);
}

/** Changes one character of an id (to another character the id uses) so it is well-formed but unknown. */
export function mutateId(id) {
  const body = id.slice(id.indexOf('_') + 1);
  const alphabet = [...new Set(body)].filter((c) => /[0-9A-Za-z]/.test(c));
  const last = id[id.length - 1];
  const replacement = alphabet.find((c) => c !== last) || (last === '0' ? '1' : '0');
  return id.slice(0, -1) + replacement;
}
