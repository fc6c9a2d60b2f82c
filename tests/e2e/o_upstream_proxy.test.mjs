// Scenario o: chatd reaches its upstream through an HTTP proxy — a CONNECT
// tunnel for HTTPS (TLS still verified end to end), absolute-form requests for
// plain HTTP — taken from --upstream-proxy or the usual environment variables,
// with no_proxy honoured and a refused tunnel reported as an error.

import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import {
  withProvider, newSession, turn, assertCompleted, assertError, EXPECTED, FAKE_KEY,
} from './support/provider.mjs';

const BASIC = EXPECTED['openai-chat-basic.sse'];

/** A small forward proxy that records what it was asked. */
async function startProxy({ refuse = 0 } = {}) {
  const seen = [];
  const server = http.createServer((req, res) => {
    // Plain HTTP through a proxy: the request line carries the absolute URL.
    seen.push({ method: req.method, url: req.url, auth: req.headers['proxy-authorization'] });
    const target = new URL(req.url);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const upstream = http.request(target, { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req, client, head) => {
    seen.push({ method: 'CONNECT', url: req.url, auth: req.headers['proxy-authorization'] });
    if (refuse) {
      client.end(`HTTP/1.1 ${refuse} Refused\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const [host, port] = [req.url.slice(0, req.url.lastIndexOf(':')), req.url.slice(req.url.lastIndexOf(':') + 1)];
    const upstream = net.connect(Number(port), host === 'localhost' ? '127.0.0.1' : host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

async function withProxy(opts, body) {
  const proxy = await startProxy(opts);
  try {
    return await body(proxy);
  } finally {
    await proxy.close();
  }
}

test('o: HTTPS through --upstream-proxy: a CONNECT tunnel with credentials, certificate still verified', async () => {
  await withProxy({}, async (proxy) => {
    const withCredentials = proxy.url.replace('http://', 'http://al%40ice:s3cret@');
    await withProvider({
      provider: 'openai', basePath: '/v1', tls: true,
      args: ['--upstream-proxy', withCredentials], env: { OPENAI_API_KEY: FAKE_KEY },
    }, async (srv, up) => {
      up.script([{ fixture: 'openai-chat-basic.sse' }]);
      const s = await newSession(srv);
      const { message: m } = await turn(srv, s.id, "hello");
      assertCompleted(m, BASIC.text, 'stop');
      const port = new URL(up.url).port;
      assert.deepEqual(proxy.seen, [{
        method: 'CONNECT', url: `localhost:${port}`,
        auth: `Basic ${Buffer.from('al@ice:s3cret').toString('base64')}`,
      }]);
      assert.equal(up.requests.length, 1);
      assert.equal(up.requests[0].path, '/v1/chat/completions');
      // (the harness's own header line repeats the command line; chatd's log lines follow)
      const logged = srv.stderrText().split('\n').filter((l) => !l.startsWith('----- [')).join('\n');
      assert.match(logged, /via proxy 127\.0\.0\.1:/);
      assert.doesNotMatch(logged, /s3cret/, 'proxy credentials are not logged');
    });
  });
});

test('o: the proxy comes from HTTPS_PROXY unless NO_PROXY names the host', async () => {
  await withProxy({}, async (proxy) => {
    await withProvider({
      provider: 'anthropic', tls: true,
      env: { ANTHROPIC_API_KEY: FAKE_KEY, HTTPS_PROXY: proxy.url, NO_PROXY: 'example.com' },
    }, async (srv, up) => {
      up.script([{ fixture: 'anthropic-basic.sse' }]);
      const { message: m } = await turn(srv, (await newSession(srv)).id, "hello");
      assertCompleted(m, EXPECTED['anthropic-basic.sse'].text, 'stop');
      assert.equal(proxy.seen.length, 1);
      assert.equal(proxy.seen[0].method, 'CONNECT');
    });
    await withProvider({
      provider: 'anthropic', tls: true,
      env: { ANTHROPIC_API_KEY: FAKE_KEY, HTTPS_PROXY: proxy.url, NO_PROXY: 'example.com, localhost' },
    }, async (srv, up) => {
      up.script([{ fixture: 'anthropic-basic.sse' }]);
      const { message: m } = await turn(srv, (await newSession(srv)).id, "hello");
      assertCompleted(m, EXPECTED['anthropic-basic.sse'].text, 'stop');
      assert.equal(proxy.seen.length, 1, 'NO_PROXY=localhost: the second chatd went direct');
    });
  });
});

test('o: plain HTTP through http_proxy goes in absolute form', async () => {
  await withProxy({}, async (proxy) => {
    await withProvider({
      provider: 'openai', basePath: '/v1', env: { http_proxy: proxy.url },
    }, async (srv, up) => {
      up.script([{ fixture: 'openai-chat-basic.sse' }]);
      const { message: m } = await turn(srv, (await newSession(srv)).id, "hello");
      assertCompleted(m, BASIC.text, 'stop');
      assert.equal(proxy.seen.length, 1);
      assert.equal(proxy.seen[0].method, 'POST');
      assert.equal(proxy.seen[0].url, `${up.url}/v1/chat/completions`);
    });
  });
});

test('o: a proxy that refuses the tunnel ends the message as an error, not retried', async () => {
  await withProxy({ refuse: 403 }, async (proxy) => {
    await withProvider({
      provider: 'openai', basePath: '/v1', tls: true, args: ['--upstream-proxy', proxy.url],
    }, async (srv, up) => {
      const { message: m } = await turn(srv, (await newSession(srv)).id, "hello");
      assertError(m, 'upstream_unavailable', '');
      assert.match(m.error.message, /proxy answered CONNECT with HTTP 403/);
      assert.equal(proxy.seen.length, 1);
      assert.equal(up.requests.length, 0);
    });
  });
});
