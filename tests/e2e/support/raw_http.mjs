// Raw HTTP/1.1 over node:net for the framing edge cases (t_http_edge): the test
// writes every byte, reads every byte, and parses a sequence of responses
// (pipelining, HEAD, 1xx interim answers) itself.
//
// - connectRaw(): a TCP connection that records every byte received, whether
//   and how the server ended it ('end' = FIN, 'close'), and any socket error
//   with the number of bytes received before it.
// - parseResponses(): splits received bytes into responses, given the request
//   methods in order (a response to HEAD, 1xx, 204 and 304 have no body).
// - launchWrapped(): starts chatd through `sh -c '<prefix> && exec "$0" "$@"'`
//   (e.g. `ulimit -n 64`), with the same readiness rule as support/chatd.mjs.
// - cpuSeconds(pid): utime + stime of a process from /proc/<pid>/stat.
// Every wait in here has a deadline.

import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { chatdBin, storeArgs } from './chatd.mjs';

const READY_RE = /chatd listening on (http:\/\/[^\s]+)/;

/** Resolves with `promise`, or rejects after `ms` with `what`. */
export function within(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A short printable form of bytes for failure messages. */
export function show(buf, max = 600) {
  const s = (Buffer.isBuffer(buf) ? buf.toString('latin1') : String(buf));
  const j = JSON.stringify(s.length > max ? `${s.slice(0, max)}…(${s.length} bytes)` : s);
  return j;
}

/**
 * Opens a TCP connection to baseUrl's host and port. Resolves (once connected)
 * with a handle:
 *   socket, bytes() (everything received, a Buffer), text() (latin1),
 *   ended: null | { how: 'end'|'close', at, bytesBefore }  (the server ended it),
 *   error: null | { code, message, at, bytesBefore }       (first socket error),
 *   closed: a Promise of `ended`,
 *   write(data): resolves when the data is handed to the kernel; rejects on error,
 *   waitUntil(pred, ms, what): resolves with pred(bytes) once truthy; rejects at
 *     the deadline or when the connection ends with pred still false,
 *   waitClosed(ms, what), destroy().
 */
export function connectRaw(baseUrl, { connectTimeoutMs = 5000 } = {}) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const chunks = [];
    let size = 0;
    const h = { socket, ended: null, error: null, openedAt: null };
    const waiters = new Set();
    let markClosed;
    h.closed = new Promise((r) => { markClosed = r; });
    h.bytes = () => (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    h.text = () => h.bytes().toString('latin1');
    const notify = () => { for (const w of [...waiters]) w(); };
    const end = (how) => {
      if (h.ended) return;
      h.ended = { how, at: Date.now(), bytesBefore: size };
      markClosed(h.ended);
      notify();
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${hostname}:${port}: no connection within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    socket.on('connect', () => {
      clearTimeout(timer);
      h.openedAt = Date.now();
      resolve(h);
    });
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      size += chunk.length;
      if (chunks.length > 64) { const all = Buffer.concat(chunks); chunks.length = 0; chunks.push(all); }
      notify();
    });
    socket.on('end', () => end('end'));
    socket.on('close', () => end('close'));
    socket.on('error', (err) => {
      if (!h.error) h.error = { code: err.code, message: err.message, at: Date.now(), bytesBefore: size };
      if (!h.openedAt) {
        clearTimeout(timer);
        reject(new Error(`connect to ${hostname}:${port}: ${err.message}`));
      }
    });
    h.write = (data) => new Promise((res, rej) => {
      if (socket.destroyed || socket.writableEnded) { rej(new Error('socket is closed')); return; }
      socket.write(data, (err) => (err ? rej(err) : res()));
    });
    h.waitUntil = (pred, ms, what = 'condition') => new Promise((res, rej) => {
      let t;
      const check = () => {
        let v;
        try { v = pred(h.bytes()); } catch (err) { done(); rej(err); return; }
        if (v) { done(); res(v); return; }
        if (h.ended) {
          done();
          rej(new Error(`${what}: the connection ended (${h.ended.how}${h.error ? `, ${h.error.code}` : ''}) first; received ${show(h.bytes())}`));
        }
      };
      const done = () => { clearTimeout(t); waiters.delete(check); };
      t = setTimeout(() => { done(); rej(new Error(`${what}: not within ${ms} ms; received ${show(h.bytes())}`)); }, ms);
      waiters.add(check);
      check();
    });
    h.waitClosed = (ms, what = 'the server closing the connection') =>
      within(h.closed, ms, `${what} (received so far ${show(h.bytes(), 300)})`);
    h.destroy = () => socket.destroy();
  });
}

/** Counts HTTP/1.x status lines anywhere in the bytes. */
export function countStatusLines(buf) {
  const s = Buffer.isBuffer(buf) ? buf.toString('latin1') : String(buf);
  return (s.match(/HTTP\/1\.[01] \d{3}/g) || []).length;
}

/**
 * Parses consecutive HTTP/1.x responses from buf. methods: the request method
 * of each final response in order (HEAD: no body). closed: the peer closed, so
 * a body without length ends at the end of buf.
 * Returns { responses, end (offset after the last complete response), error
 * (a description when the bytes at `end` are not the start of a response),
 * incomplete (bytes of a response that has not fully arrived) }.
 * A response: { status, reason, headers (Headers), headerNames (as sent, in
 * order), interim, start, headEnd, end, body (Buffer), text, json }.
 */
export function parseResponses(buf, { methods = [], closed = false } = {}) {
  const responses = [];
  let off = 0;
  let finals = 0;
  for (;;) {
    if (off >= buf.length) return { responses, end: off, error: null, incomplete: false };
    const prefix = buf.subarray(off, off + 9).toString('latin1');
    if (!'HTTP/1.1 '.startsWith(prefix) && !'HTTP/1.0 '.startsWith(prefix)) {
      return { responses, end: off, error: `bytes at offset ${off} are not a status line: ${show(buf.subarray(off), 200)}`, incomplete: false };
    }
    const headEnd = buf.indexOf('\r\n\r\n', off);
    if (headEnd === -1) return { responses, end: off, error: null, incomplete: true };
    const lines = buf.subarray(off, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!m) return { responses, end: off, error: `bad status line ${JSON.stringify(lines[0])}`, incomplete: false };
    const status = Number(m[1]);
    const headers = new Headers();
    const headerNames = [];
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i <= 0) return { responses, end: off, error: `bad header line ${JSON.stringify(line)}`, incomplete: false };
      headerNames.push(line.slice(0, i));
      headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    const bodyStart = headEnd + 4;
    const interim = status >= 100 && status < 200;
    const method = interim ? undefined : methods[finals];
    let body;
    let next;
    if (interim || method === 'HEAD' || status === 204 || status === 304) {
      body = Buffer.alloc(0);
      next = bodyStart;
    } else if (/(^|,)\s*chunked\s*$/i.test(headers.get('transfer-encoding') || '')) {
      const parts = [];
      let p = bodyStart;
      let ok = false;
      for (;;) {
        const nl = buf.indexOf('\r\n', p);
        if (nl === -1) break;
        const size = parseInt(buf.subarray(p, nl).toString('latin1'), 16);
        if (Number.isNaN(size)) return { responses, end: off, error: `bad chunk size at ${p}`, incomplete: false };
        if (size === 0) {
          const tEnd = buf.indexOf('\r\n\r\n', nl);
          const direct = buf.subarray(nl, nl + 4).toString('latin1') === '\r\n\r\n';
          if (direct) { p = nl + 4; ok = true; } else if (tEnd !== -1) { p = tEnd + 4; ok = true; }
          break;
        }
        if (buf.length < nl + 2 + size + 2) break;
        parts.push(buf.subarray(nl + 2, nl + 2 + size));
        p = nl + 2 + size + 2;
      }
      if (!ok) return { responses, end: off, error: null, incomplete: true };
      body = Buffer.concat(parts);
      next = p;
    } else if (headers.get('content-length') !== null) {
      const len = Number(headers.get('content-length'));
      if (!Number.isInteger(len) || len < 0) return { responses, end: off, error: `bad Content-Length ${headers.get('content-length')}`, incomplete: false };
      if (buf.length < bodyStart + len) return { responses, end: off, error: null, incomplete: true };
      body = buf.subarray(bodyStart, bodyStart + len);
      next = bodyStart + len;
    } else {
      if (!closed) return { responses, end: off, error: null, incomplete: true };
      body = buf.subarray(bodyStart);
      next = buf.length;
    }
    const text = body.toString('utf8');
    let json = null;
    try { json = text.length ? JSON.parse(text) : null; } catch { json = null; }
    responses.push({ status, reason: m[2] || '', headers, headerNames, interim, start: off, headEnd: bodyStart, end: next, body, text, json });
    if (!interim) finals += 1;
    off = next;
  }
}

/** The final (non-1xx) responses in buf. */
export function finalResponses(buf, opts) {
  return parseResponses(buf, opts).responses.filter((r) => !r.interim);
}

/**
 * Writes `data` on a fresh connection and waits until `count` final responses
 * have arrived (and, with waitClose, until the server ends the connection).
 * Bytes that do not parse before `count` responses are an error; bytes after
 * them are left to the caller (parsed.end, parsed.error).
 * Returns { conn, responses, parsed, raw }.
 */
export async function exchange(baseUrl, data, { methods = [], count = 1, waitClose = false, timeoutMs = 10000, what = 'the response' } = {}) {
  const conn = await connectRaw(baseUrl);
  try {
    await conn.write(data);
    await conn.waitUntil((b) => {
      const p = parseResponses(b, { methods, closed: !!conn.ended });
      if (p.responses.filter((r) => !r.interim).length >= count) return true;
      if (p.error) throw new Error(`${what}: unparseable answer: ${p.error}; all bytes ${show(b)}`);
      return false;
    }, timeoutMs, what);
    if (waitClose) await conn.waitClosed(timeoutMs);
    const raw = conn.bytes();
    const parsed = parseResponses(raw, { methods, closed: !!conn.ended });
    return { conn, parsed, responses: parsed.responses.filter((r) => !r.interim), raw };
  } finally {
    conn.destroy();
  }
}

/** The list of an Allow header, upper-cased. */
export function allowList(headers) {
  return (headers.get('allow') || '').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
}

/** A chunked encoding of `data` in pieces of `piece` bytes. */
export function chunked(data, piece = 7) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  const out = [];
  for (let i = 0; i < buf.length; i += piece) {
    const part = buf.subarray(i, i + piece);
    out.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(out);
}

// ---------------------------------------------------------------------------
// Processes.

let clkTck = null;
function ticksPerSecond() {
  if (clkTck === null) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

/** utime + stime (fields 14 and 15 of /proc/<pid>/stat) in seconds. */
export async function cpuSeconds(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // rest[0] is field 3
  return (Number(rest[14 - 3]) + Number(rest[15 - 3])) / ticksPerSecond();
}

/**
 * Starts chatd as `sh -c '<shellPrefix> && exec "$0" "$@"' <bin> --port 0
 * --data-dir <tmp> ...args`, so the shell's settings (ulimit) apply and the
 * pid is chatd's own after exec. Resolves once chatd printed "chatd listening
 * on ..." (deadline 20 s) with { proc, pid, baseUrl, dataDir, stderrText(),
 * exited, kill() (SIGKILL and wait), cleanup() }.
 */
export async function launchWrapped({ shellPrefix, args = [], env, name = 'chatd-wrapped' } = {}) {
  const bin = chatdBin();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'chatd-e2e-'));
  const argv = ['--port', '0', '--data-dir', dataDir, ...args, ...storeArgs()];
  const childEnv = { ...process.env };
  for (const [k, v] of Object.entries(env || {})) {
    if (v === undefined || v === null) delete childEnv[k]; else childEnv[k] = String(v);
  }
  const proc = spawn('sh', ['-c', `${shellPrefix} && exec "$0" "$@"`, bin, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
  const stderr = [];
  let stdout = '';
  const srv = { name, proc, pid: proc.pid, dataDir, baseUrl: null, argv };
  srv.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  srv.stderrText = () => Buffer.concat(stderr).toString('utf8');
  proc.stderr.on('data', (c) => { stderr.push(c); });
  const onExit = () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', onExit);
  srv.kill = async () => {
    process.off('exit', onExit);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return srv.exited;
  };
  srv.cleanup = () => rm(dataDir, { recursive: true, force: true });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not print "chatd listening on ..." within 20 s; stdout ${show(stdout)}`)), 20000);
    proc.stdout.on('data', (c) => {
      stdout += c.toString('utf8');
      if (stdout.length > 65536) stdout = stdout.slice(-65536);
      const m = READY_RE.exec(stdout);
      if (m) { clearTimeout(timer); resolve(m[1].replace(/\/+$/, '')); }
    });
    proc.on('error', (err) => { clearTimeout(timer); reject(err); });
    srv.exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`)); });
  });
  try {
    srv.baseUrl = await ready;
  } catch (err) {
    await srv.kill();
    err.message += `\n----- ${name} stderr -----\n${srv.stderrText().slice(-4000)}`;
    throw err;
  }
  return srv;
}
