// PostgreSQL goes away in the middle of generations (the server stopped, then
// started again: a restart with a pause in it). While commits fail /readyz
// answers 503 and answers pause without growing chatd's memory; when the
// server is back chatd recovers by itself, and every stream carries its whole
// answer exactly once. An outage longer than --store-outage-timeout-ms ends
// the answers with what was stored. Nothing any client saw is lost either way.
//
// It runs its own cluster (the shared one serves other suites meanwhile), in
// the e2e_pg_ variant only.

import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withChatd, createSession, send, getContent, waitFor, utf8, isPrefix, ON_POSTGRES } from './support/chatd.mjs';
import { contiguousBytes } from './support/sse.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLUSTER = path.resolve(HERE, '../support/pg_cluster.sh');
const SKIP = !ON_POSTGRES && 'runs in the e2e_pg_ variant, against a PostgreSQL cluster of its own';
const SIM = ['--sim-tokens-per-second', '20', '--sim-min-tokens', '150', '--sim-max-tokens', '300'];

async function withOwnCluster(body) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatd-zd-'));
  execFileSync('bash', [CLUSTER, 'start', dir]);
  try {
    const conninfo = (await readFile(path.join(dir, 'conninfo'), 'utf8')).trim();
    execFileSync('psql', [conninfo, '-v', 'ON_ERROR_STOP=1', '-qc', 'CREATE DATABASE zd']);
    return await body({
      db: `${conninfo} dbname=zd`,
      pause: () => execFileSync('bash', [CLUSTER, 'pause', dir]),
      resume: () => execFileSync('bash', [CLUSTER, 'resume', dir]),
    });
  } finally {
    execFileSync('bash', [CLUSTER, 'stop', dir]);
    await rm(dir, { recursive: true, force: true });
  }
}

async function readyz(srv) {
  return (await srv.http('GET', '/readyz')).status;
}

async function rssKiB(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

async function startAnswers(srv, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const session = await createSession(srv);
    const { assistant_message: am } = await send(srv, session.id, `Tell me about rivers, part ${i}.`);
    out.push({ id: am.id, stream: srv.stream(`/messages/${am.id}/stream`) });
  }
  for (const a of out) await a.stream.waitForDeltas(3);
  return out;
}

test('zd: PostgreSQL stops mid-answer and comes back: 503 meanwhile, then every answer completes, every byte once', { skip: SKIP }, async () => {
  await withOwnCluster(async (pg) => {
    await withChatd({ args: [...SIM, '--db', pg.db], name: 'chatd-zd-restart' }, async (srv) => {
      const answers = await startAnswers(srv, 3);
      pg.pause();
      await waitFor(async () => (await readyz(srv)) === 503, { timeoutMs: 20000, message: '/readyz to answer 503 while commits fail' });
      // Answers pause: their text stops reaching clients, and memory stays put.
      const before = await rssKiB(srv.proc.pid);
      const seen = answers.map((a) => a.stream.deltas().length);
      await new Promise((r) => setTimeout(r, 3000));
      const after = await rssKiB(srv.proc.pid);
      assert.ok(after - before < 20 * 1024, `chatd grew by ${after - before} KiB during the outage`);
      for (const [i, a] of answers.entries())
        assert.ok(a.stream.deltas().length <= seen[i] + 1, 'text reached a client while nothing could be stored');
      pg.resume();
      await waitFor(async () => (await readyz(srv)) === 200, { timeoutMs: 30000, message: '/readyz to recover by itself' });
      for (const a of answers) {
        await a.stream.waitForTerminal(90000);
        const final = await getContent(srv, a.id);
        assert.equal(final.status, 'completed', JSON.stringify(final).slice(0, 300));
        assert.ok(contiguousBytes(a.stream.deltas(), 0).equals(utf8(final.content)),
          'the stream carried the stored answer exactly once, across the outage');
        a.stream.close();
      }
    });
  });
});

test('zd: an outage longer than --store-outage-timeout-ms ends the answers with what was stored', { skip: SKIP }, async () => {
  await withOwnCluster(async (pg) => {
    await withChatd({ args: [...SIM, '--db', pg.db, '--store-outage-timeout-ms', '1500'], name: 'chatd-zd-long' }, async (srv) => {
      const answers = await startAnswers(srv, 2);
      pg.pause();
      await waitFor(() => /commits have failed for 1500 ms: ended 2 live answers/.test(srv.stderrText()),
        { timeoutMs: 30000, message: 'chatd to end the answers after the outage timeout' });
      const seen = answers.map((a) => contiguousBytes(a.stream.deltas(), 0));
      pg.resume();
      await waitFor(async () => (await readyz(srv)) === 200, { timeoutMs: 30000, message: '/readyz to recover' });
      for (const [i, a] of answers.entries()) {
        const final = await waitFor(async () => {
          const c = await getContent(srv, a.id);
          return c.status !== 'generating' ? c : null;
        }, { timeoutMs: 30000, message: 'the answer to end once the store is back' });
        assert.equal(final.status, 'error');
        assert.ok(isPrefix(seen[i], utf8(final.content)), 'what the client saw is kept');
        await a.stream.waitForTerminal(30000);
        assert.equal(a.stream.terminal.data.error?.code, 'store_unavailable', JSON.stringify(a.stream.terminal.data));
        a.stream.close();
      }
    });
  });
});
