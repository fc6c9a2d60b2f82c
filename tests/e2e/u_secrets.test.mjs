// Scenario u: secrets stay secret. Credentials of every kind (JWTs, their
// HS256 secret, API keys, the gateway secret, the provider's API key) never
// appear in chatd's log, at the most verbose level, nor in any answer, valid
// or not; and start-up warns when the provider key would travel over plain
// http:// to another machine.

import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { withChatd } from './support/chatd.mjs';
import { makeJwt, claims, randomSecret, newApiKey, writeApiKeysFile, tempDir, authHeaders, startOutcome, assertStarted } from './support/auth.mjs';

function assertNoSecret(text, secrets, where) {
  for (const [name, secret] of Object.entries(secrets)) {
    assert.ok(!text.includes(secret), `${where} contains the ${name}`);
  }
}

test('u: JWTs and their secret never reach the log or an answer', { timeout: 60000 }, async () => {
  const secret = randomSecret(32);
  const good = makeJwt(claims('alice'), { alg: 'HS256', key: secret });
  const forged = makeJwt(claims('mallory'), { alg: 'HS256', key: randomSecret(32) });
  await withChatd({ args: ['--auth', 'jwt', '--log-level', 'trace'], env: { CHATD_JWT_SECRET: secret }, name: 'chatd-u-jwt' }, async (srv) => {
    const answers = [];
    for (const token of [good, forged, `${good}x`, 'not-a-jwt']) {
      for (const [method, p, body] of [['GET', '/sessions'], ['POST', '/sessions', { title: 't' }], ['GET', '/nope']]) {
        const r = await srv.api(method, p, body, authHeaders(token));
        answers.push(`${r.status} ${[...r.headers].join(' ')} ${r.text}`);
      }
    }
    assert.ok(answers.some((a) => a.startsWith('201')), 'the valid token worked');
    const secrets = { 'valid token': good, 'forged token': forged, 'HS256 secret': secret, 'token signature': good.split('.')[2] };
    assertNoSecret(answers.join('\n'), secrets, 'an answer');
    assertNoSecret(srv.stderrText(), secrets, 'the log');
  });
});

test('u: API keys and the gateway secret never reach the log or an answer', { timeout: 60000 }, async () => {
  const dir = await tempDir();
  const key = newApiKey();
  const wrong = newApiKey();
  const file = path.join(dir, 'keys.txt');
  await writeApiKeysFile(file, [{ key, user: 'alice' }]);
  await withChatd({ args: ['--auth', 'api-keys', '--api-keys-file', file, '--log-level', 'trace'], name: 'chatd-u-keys' }, async (srv) => {
    const ok = await srv.api('GET', '/sessions', undefined, authHeaders(key));
    const bad = await srv.api('GET', '/sessions', undefined, authHeaders(wrong));
    assert.equal(ok.status, 200);
    assert.equal(bad.status, 401);
    const text = `${ok.text}${[...ok.headers].join()}${bad.text}${[...bad.headers].join()}`;
    assertNoSecret(text, { key, 'wrong key': wrong }, 'an answer');
    assertNoSecret(srv.stderrText(), { key, 'wrong key': wrong }, 'the log');
  });
  const gateway = randomSecret(24);
  await withChatd({ args: ['--auth', 'trusted-header', '--trusted-secret-env', 'GW_SECRET', '--log-level', 'trace'], env: { GW_SECRET: gateway }, name: 'chatd-u-gw' }, async (srv) => {
    const ok = await srv.api('GET', '/sessions', undefined, { 'X-Chatd-User': 'alice', 'X-Chatd-Proxy-Secret': gateway });
    const bad = await srv.api('GET', '/sessions', undefined, { 'X-Chatd-User': 'alice', 'X-Chatd-Proxy-Secret': `${gateway}x` });
    assert.equal(ok.status, 200);
    assert.equal(bad.status, 401);
    assertNoSecret(`${ok.text}${bad.text}`, { 'gateway secret': gateway }, 'an answer');
    assertNoSecret(srv.stderrText(), { 'gateway secret': gateway }, 'the log');
  });
});

test('u: a provider key bound for plain http:// on another machine is warned about, never printed', { timeout: 60000 }, async () => {
  const providerKey = `sk-test-${randomSecret(16)}`;
  // 192.0.2.1 (TEST-NET-1) is never reached: the warning comes at start-up.
  const far = await startOutcome({
    args: ['--provider', 'openai', '--base-url', 'http://192.0.2.1/v1', '--log-level', 'trace'],
    env: { OPENAI_API_KEY: providerKey },
  });
  assertStarted(far, 'plain http to another machine');
  assert.match(far.stderr, /plain http:\/\//);
  assert.ok(!far.stderr.includes(providerKey), 'the log contains the provider key');
  // Loopback and https:// are fine.
  for (const url of ['http://127.0.0.1:9/v1', 'https://api.example.com/v1']) {
    const near = await startOutcome({ args: ['--provider', 'openai', '--base-url', url], env: { OPENAI_API_KEY: providerKey } });
    assertStarted(near, url);
    assert.doesNotMatch(near.stderr, /plain http:\/\//, url);
  }
});
