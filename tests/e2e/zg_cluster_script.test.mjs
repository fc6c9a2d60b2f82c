// scripts/cluster.sh as a user runs it (README, "Running on PostgreSQL"): it
// starts its own PostgreSQL and three nodes; an answer sent to node 1 and
// followed on node 3 survives node 1's kill -9; Ctrl-C stops everything and
// removes the database. In the e2e_pg_ variant only (it needs PostgreSQL 15
// installed, and starts its own cluster).

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  chatdBin, request, API_PREFIX, waitFor, utf8, ON_POSTGRES,
} from './support/chatd.mjs';
import { openStream, assertCarried, closeAllStreams } from './support/sse.mjs';

const SKIP = !ON_POSTGRES && 'runs in the e2e_pg_ variant: it needs PostgreSQL 15';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('zg: scripts/cluster.sh runs three nodes that take over each other\'s answers', { skip: SKIP }, async () => {
  const base = 20000 + Math.floor(Math.random() * 30000);
  const proc = spawn('bash', [path.join(ROOT, 'scripts/cluster.sh'), '--sim-tokens-per-second', '40',
    '--sim-min-tokens', '120', '--sim-max-tokens', '160', '--lease-ms', '1500'], {
    env: { ...process.env, CHATD_BIN: chatdBin(), CHATD_BASE_PORT: String(base) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (c) => { out += c; });
  proc.stderr.on('data', (c) => { out += c; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let dir;
  try {
    await waitFor(() => /Ctrl-C stops everything/.test(out), { timeoutMs: 60000, message: `cluster.sh to start; output: ${out}` });
    const nodes = [...out.matchAll(/node-(\d) on (http:\/\/\S+) \(pid (\d+), log (\S+)\/node-\d\/stderr\.log\)/g)]
      .map((m) => ({ url: m[2], pid: Number(m[3]) }));
    assert.equal(nodes.length, 3, out);
    dir = /log (\S+)\/node-1\//.exec(out)[1];
    const api = (node, method, p, body) => request(node.url, method, API_PREFIX + p, body);
    const session = await api(nodes[0], 'POST', '/sessions', {});
    assert.equal(session.status, 201, session.text);
    const sent = await api(nodes[0], 'POST', `/sessions/${session.json.id}/messages`, { content: 'Tell me a long story.' });
    assert.equal(sent.status, 202, sent.text);
    const id = sent.json.assistant_message.id;
    const stream = openStream(`${nodes[2].url}${API_PREFIX}/messages/${id}/stream`);
    await stream.waitForDeltas(3);
    process.kill(nodes[0].pid, 'SIGKILL');
    const end = await stream.waitForTerminal(60000);
    assert.equal(end.data.status, 'completed');
    const final = await api(nodes[1], 'GET', `/messages/${id}/content`);
    assert.equal(final.json.status, 'completed');
    assertCarried(stream, utf8(final.json.content), "node 3's stream across node 1's death");
    const logs = [2, 3].map((i) => readFileSync(path.join(dir, `node-${i}`, 'stderr.log'), 'utf8')).join('');
    assert.match(logs, new RegExp(`taking over message ${id}`));
    proc.kill('SIGINT');
    const exit = await exited;
    assert.equal(exit.code, 0, `cluster.sh exit: ${JSON.stringify(exit)}; output: ${out}`);
    assert.match(out, /cluster: stopped/);
    assert.ok(!existsSync(path.join(dir, 'pg', 'conninfo')), 'the database is removed');
  } finally {
    closeAllStreams();
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGINT');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }
});
