// Connection-level limits (I7): an oversized request head gets a JSON 431, a
// request that arrives too slowly and an idle keep-alive connection are closed
// by the server within their deadlines, connections over the limit are cut
// off at once, and none of it disturbs other clients.

import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { withChatd, createSession, waitFor } from './support/chatd.mjs';

const ARGS = ['--max-header-bytes', '2048', '--request-timeout-ms', '400', '--idle-timeout-ms', '400'];

/** Opens a raw TCP connection; resolves { socket, received(), closed } . */
function connect(baseUrl) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => {
      let data = '';
      socket.on('data', (chunk) => { data += chunk.toString('utf8'); });
      const closed = new Promise((done) => socket.on('close', () => done(Date.now())));
      resolve({ socket, received: () => data, closed });
    });
    socket.on('error', reject);
  });
}

/** Resolves when `promise` settles, or rejects after `ms` with `what`. */
function within(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

test('j: an oversized request head answers 431 with a JSON error', async () => {
  await withChatd({ args: ARGS, name: 'chatd-j1' }, async (srv) => {
    const c = await connect(srv.baseUrl);
    c.socket.write(`GET /api/v1/chat/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
    await within(c.closed, 10000, 'the server closing the connection');
    const text = c.received();
    assert.match(text, /^HTTP\/1\.1 431 /, text.slice(0, 200));
    assert.match(text, /"code":"headers_too_large"/);
  });
});

test('j: a request that stalls half-way is cut off by the request deadline', async () => {
  await withChatd({ args: ARGS, name: 'chatd-j2' }, async (srv) => {
    const c = await connect(srv.baseUrl);
    c.socket.write('POST /api/v1/chat/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ti');
    await within(c.closed, 10000, 'the server closing a stalled request');
    // The server stays healthy for everyone else.
    const s = await createSession(srv, { title: 'after slowloris' });
    assert.ok(s.id);
  });
});

test('j: an idle keep-alive connection is closed after the idle timeout', async () => {
  await withChatd({ args: ARGS, name: 'chatd-j3' }, async (srv) => {
    const c = await connect(srv.baseUrl);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await within(c.closed, 10000, 'the server closing an idle keep-alive connection');
    assert.match(c.received(), /^HTTP\/1\.1 200 /);
  });
});

test('j: connections beyond --max-connections are closed at once, and room returns', async () => {
  await withChatd({ args: ['--max-connections', '2'], name: 'chatd-j4' }, async (srv) => {
    const a = await connect(srv.baseUrl);
    const b = await connect(srv.baseUrl);
    // Both are being served: each answers a request on its kept-alive connection.
    for (const c of [a, b]) c.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(() => a.received().includes('200') && b.received().includes('200'),
      { message: 'both connections answered' });
    const c = await connect(srv.baseUrl);
    await within(c.closed, 10000, 'the server closing the connection over the limit');
    assert.equal(c.received(), '');
    a.socket.destroy();
    await waitFor(async () => {
      const r = await srv.api('GET', '/sessions');
      return r.status === 200;
    }, { message: 'a request succeeding once a connection is free' });
    b.socket.destroy();
  });
});
