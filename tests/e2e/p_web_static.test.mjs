// Scenario p: chatd serves the web UI's static files itself: index at /, types,
// ETag revalidation, a Content-Security-Policy that forbids inline script,
// Debian's markdown-it under /vendor/, JSON 404 for anything else, and no UI
// with --web-dir none.

import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withChatd, request } from './support/chatd.mjs';

async function webDir() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatd-web-'));
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>chat</title>');
  await mkdir(path.join(dir, 'css'));
  await writeFile(path.join(dir, 'css', 'style.css'), 'body{margin:0}');
  await writeFile(path.join(dir, 'app.js'), 'export const x = 1;');
  return dir;
}

test('p: the UI is served from --web-dir with types, ETag and a strict CSP', async () => {
  const dir = await webDir();
  await withChatd({ args: ['--web-dir', dir], name: 'chatd-p' }, async (srv) => {
    const index = await request(srv.baseUrl, 'GET', '/');
    assert.equal(index.status, 200);
    assert.equal(index.text, '<!doctype html><title>chat</title>');
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    const csp = index.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
    const etag = index.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/);

    const again = await request(srv.baseUrl, 'GET', '/', undefined, { 'If-None-Match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');

    const css = await request(srv.baseUrl, 'GET', '/css/style.css');
    assert.equal(css.status, 200);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal(css.text, 'body{margin:0}');
    const js = await request(srv.baseUrl, 'GET', '/app.js');
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');

    const md = await request(srv.baseUrl, 'GET', '/vendor/markdown-it.js');
    assert.equal(md.status, 200, 'Debian libjs-markdown-it is installed by scripts/setup.sh');
    assert.match(md.text, /markdown-it/);

    for (const p of ['/nope.js', '/css/', '/css/style.css/', '/api/v1/chat/nope']) {
      const r = await request(srv.baseUrl, 'GET', p);
      assert.equal(r.status, 404, p);
      assert.equal(r.json?.error?.code, 'not_found', p);
    }
    // The page exists but takes no POST: 405 with what it does take.
    const post = await request(srv.baseUrl, 'POST', '/', '{}');
    assert.equal(post.status, 405);
    assert.match(post.headers.get('allow') || '', /\bGET\b/);
    // The API is unaffected.
    assert.equal((await request(srv.baseUrl, 'GET', '/healthz')).status, 200);
  });
});

test('p: --web-dir none serves no UI', async () => {
  await withChatd({ args: ['--web-dir', 'none'], name: 'chatd-p-none' }, async (srv) => {
    const r = await request(srv.baseUrl, 'GET', '/');
    assert.equal(r.status, 404);
    assert.equal(r.json?.error?.code, 'not_found');
  });
});
