// Starts the real chatd binary for the browser tests and reads its store over
// HTTP (the same API the page uses).
//
// startChatd({ args }) spawns `$CHATD_BIN --port 0 --data-dir <tmp> ...args`,
// waits (deadline 20 s) for the stdout line `chatd listening on http://HOST:PORT`
// and returns { baseUrl, api(), stop(), stderrText(), cleanup() }. Every wait
// here is for a condition with a deadline.

import { spawn } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const API_PREFIX = '/api/v1/chat';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_BIN = path.resolve(HERE, '../../../build/dev/bin/chatd');
const READY_RE = /chatd listening on (http:\/\/[^\s]+)/;
const STDERR_KEEP_BYTES = 4 * 1024 * 1024;
export const TERMINAL = new Set(['completed', 'error', 'cancelled']);

const live = new Set();
process.on('exit', () => {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function chatdBin() {
  return process.env.CHATD_BIN || DEFAULT_BIN;
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls predicate() until it returns a truthy value; returns that value. */
export async function waitFor(predicate, { timeoutMs = 15000, intervalMs = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  let lastValue;
  for (;;) {
    try {
      lastValue = await predicate();
      if (lastValue) return lastValue;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError ? `; last error: ${lastError.stack || lastError}` : `; last value: ${short(lastValue)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${detail}`);
    }
    await delay(intervalMs);
  }
}

export function short(value) {
  let s;
  try {
    s = JSON.stringify(value);
  } catch {
    s = String(value);
  }
  if (s === undefined) s = String(value);
  return s.length > 400 ? `${s.slice(0, 400)}…` : s;
}

async function request(baseUrl, method, urlPath, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let res;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(baseUrl + urlPath, init);
      break;
    } catch (err) {
      // A keep-alive socket the server closed between requests: retry reads once.
      if (attempt === 0 && method === 'GET') continue;
      throw new Error(`${method} ${urlPath} failed: ${err.cause?.message || err.message}`);
    }
  }
  const text = await res.text();
  let json = null;
  try {
    json = text.length ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export async function startChatd({ args = [], name = 'chatd' } = {}) {
  const bin = chatdBin();
  try {
    await access(bin, fsConstants.X_OK);
  } catch {
    throw new Error(`chatd binary not found or not executable: ${bin} (set CHATD_BIN)`);
  }
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'chatd-browser-'));
  const argv = ['--port', '0', '--data-dir', dataDir, ...args];
  const proc = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const stderr = [Buffer.from(`${bin} ${argv.join(' ')}\n`)];
  let stderrBytes = 0;
  proc.stderr.on('data', (chunk) => {
    stderr.push(chunk);
    stderrBytes += chunk.length;
    while (stderrBytes > STDERR_KEEP_BYTES && stderr.length > 2) stderrBytes -= stderr.splice(1, 1)[0].length;
  });
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    });
  });
  const stderrText = () => Buffer.concat(stderr).toString('utf8');

  let stdout = '';
  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not print "chatd listening on ..." within 20 s`)), 20000);
    proc.stdout.on('data', (chunk) => {
      stdout = (stdout + chunk.toString('utf8')).slice(-65536);
      const m = READY_RE.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/+$/, ''));
      }
    });
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})\n${stderrText()}`));
    });
  }).catch((err) => {
    try {
      proc.kill('SIGKILL');
    } catch {
      // gone
    }
    throw err;
  });

  const srv = {
    name,
    baseUrl,
    dataDir,
    proc,
    stderrText,
    http: (method, p, body, headers) => request(baseUrl, method, p, body, headers),
    api: (method, p, body, headers) => request(baseUrl, method, API_PREFIX + p, body, headers),
  };

  /** SIGTERM, wait for exit (10 s, then SIGKILL). */
  srv.stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return exited;
    proc.kill('SIGTERM');
    let timer;
    const result = await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(() => resolve(null), 10000); })]);
    clearTimeout(timer);
    if (result === null) {
      proc.kill('SIGKILL');
      return exited;
    }
    return result;
  };
  srv.cleanup = () => rm(dataDir, { recursive: true, force: true });
  return srv;
}

// ---------------------------------------------------------------------------
// The store, as the API shows it

export async function getContent(srv, messageId) {
  const r = await srv.api('GET', `/messages/${messageId}/content`);
  if (r.status !== 200) throw new Error(`content of ${messageId}: expected 200, got ${r.status} ${r.text}`);
  return r.json;
}

export async function getHistory(srv, sessionId) {
  const r = await srv.api('GET', `/sessions/${sessionId}/messages`);
  if (r.status !== 200) throw new Error(`history of ${sessionId}: expected 200, got ${r.status} ${r.text}`);
  return r.json.messages;
}

/** Waits until the message is no longer generating; returns the content answer. */
export async function waitStoreTerminal(srv, messageId, timeoutMs = 60000) {
  return waitFor(async () => {
    const c = await getContent(srv, messageId);
    return TERMINAL.has(c.status) ? c : null;
  }, { timeoutMs, intervalMs: 100, message: `message ${messageId} to end in the store` });
}

export function utf8Bytes(s) {
  return Buffer.byteLength(s, 'utf8');
}
