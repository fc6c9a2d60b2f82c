// Scenario g: a client polling with next_since during a generation sees the
// partial content grow, never sees it shrink, never misses a change, and the
// poll after completion shows the full content with nothing left generating.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, getContent, waitTerminal, delay, utf8, isPrefix } from './support/chatd.mjs';

const ARGS = ['--sim-tokens-per-second', '40', '--sim-min-tokens', '200', '--sim-max-tokens', '260'];
const POLLS = 100;

test('g: 100 polls with next_since during a generation see every change', async () => {
  await withChatd({ args: ARGS, name: 'chatd-g' }, async (srv) => {
    const session = await createSession(srv, { title: 'poll' });
    const { user_message: um, assistant_message: am } = await send(srv, session.id, 'Give me a detailed recipe for bread.');

    const answers = [];
    let since;
    // Latest state of each message as a polling client would know it.
    const known = new Map();
    const missed = [];
    for (let i = 0; i < POLLS; i++) {
      // Committed state just before this poll: the poll must show at least this much.
      const before = i === 0 ? null : await getContent(srv, am.id);
      const path = since === undefined
        ? `/messages/${session.id}/poll`
        : `/messages/${session.id}/poll?since=${encodeURIComponent(since)}`;
      const r = await srv.api('GET', path);
      assert.equal(r.status, 200, `poll #${i}: ${r.text}`);
      assert.ok(Array.isArray(r.json.messages));
      assert.equal(typeof r.json.has_more_generating, 'boolean');
      assert.equal(typeof r.json.next_since, 'string', 'next_since is a string');
      if (i === 0) {
        const ids = r.json.messages.map((m) => m.id);
        assert.ok(ids.includes(um.id) && ids.includes(am.id), 'first poll (no since) returns every message of the session');
      }
      answers.push({ i, at: Date.now(), ...r.json });
      for (const m of r.json.messages) {
        if (m.id === am.id && m.status === 'generating') {
          assert.equal(r.json.has_more_generating, true, `poll #${i} shows the message generating but has_more_generating is false`);
        }
        known.set(m.id, m);
      }
      if (before) {
        const k = known.get(am.id);
        const knownLen = k ? utf8(k.content).length : -1;
        if (knownLen < utf8(before.content).length || (before.status !== 'generating' && k?.status !== before.status)) {
          missed.push(`poll #${i}: content endpoint showed ${utf8(before.content).length} bytes (${before.status}) before it, ` +
            `but polling with next_since knows ${knownLen} bytes (${k?.status})`);
        }
      }
      since = r.json.next_since;
      await delay(10);
    }

    const final = await waitTerminal(srv, am.id, 30000);
    assert.equal(final.status, 'completed');
    const finalBytes = utf8(final.content);

    // Keep polling with next_since until the completed state arrives (it must, nothing may be missed).
    let sawCompletion = false;
    for (let extra = 0; extra < 3 && !sawCompletion; extra++) {
      const r = await srv.api('GET', `/messages/${session.id}/poll?since=${encodeURIComponent(since)}`);
      assert.equal(r.status, 200, r.text);
      answers.push({ i: POLLS + extra, at: Date.now(), ...r.json });
      for (const m of r.json.messages) known.set(m.id, m);
      since = r.json.next_since;
      const k = known.get(am.id);
      sawCompletion = k.status === 'completed';
      if (sawCompletion) assert.equal(r.json.has_more_generating, false);
    }
    const k = known.get(am.id);
    assert.equal(k.status, 'completed', 'polling with next_since missed the completion');
    assert.equal(k.content, final.content, 'the last polled content is the full content');
    assert.equal(k.is_streaming, false);
    assert.equal(known.get(um.id).content, 'Give me a detailed recipe for bread.');

    // Once nothing changes, polling with next_since returns nothing new: at
    // once on SQLite; on PostgreSQL once no transaction older than the last
    // change runs in the cluster (docs/polling.md), so it may repeat a message,
    // unchanged, a few times first.
    let quiet = false;
    for (let extra = 0; extra < 200 && !quiet; extra++) {
      if (extra > 0) await new Promise((res) => setTimeout(res, 20));
      const r = await srv.api('GET', `/messages/${session.id}/poll?since=${encodeURIComponent(since)}`);
      assert.equal(r.status, 200);
      assert.equal(r.json.has_more_generating, false);
      for (const m of r.json.messages) {
        assert.equal(m.version, known.get(m.id).version, 'a message reappeared with a new version after it ended');
      }
      quiet = r.json.messages.length === 0;
      since = r.json.next_since;
    }
    assert.ok(quiet, 'polling with next_since after everything ended keeps returning messages');

    // Every appearance of the assistant message: prefix of the final text, never shrinking, versions increasing.
    const seen = answers.flatMap((a) => a.messages.filter((m) => m.id === am.id).map((m) => ({ poll: a.i, m })));
    let prevLen = -1;
    let prevVersion = -Infinity;
    let prevContent = null;
    const partialVersions = new Set();
    for (const { poll, m } of seen) {
      const b = utf8(m.content);
      assert.ok(isPrefix(b, finalBytes), `poll #${poll}: content (${b.length} bytes) is not a prefix of the final content`);
      assert.ok(b.length >= prevLen, `poll #${poll}: content shrank ${prevLen} -> ${b.length}`);
      assert.equal(typeof m.version, 'number');
      assert.ok(m.version >= prevVersion, `poll #${poll}: version went back ${prevVersion} -> ${m.version}`);
      if (m.version === prevVersion) assert.equal(m.content, prevContent, `poll #${poll}: same version ${m.version} with different content`);
      if (m.status === 'generating' && b.length > 0) partialVersions.add(m.version);
      prevLen = b.length;
      prevVersion = m.version;
      prevContent = m.content;
    }
    assert.ok(partialVersions.size >= 3, `expected to see the partial content grow over >= 3 versions, saw ${partialVersions.size}`);

    assert.deepEqual(missed, [], 'polling with next_since missed committed changes');
    const generatingPolls = answers.filter((a) => a.messages.some((m) => m.id === am.id && m.status === 'generating'));
    assert.ok(generatingPolls.length >= 10, `only ${generatingPolls.length} of ${POLLS} polls saw the message generating`);

    // since also accepts an ISO-8601 time.
    const iso = await srv.api('GET', `/messages/${session.id}/poll?since=${encodeURIComponent(session.created_at)}`);
    assert.equal(iso.status, 200, iso.text);
    assert.ok(iso.json.messages.some((m) => m.id === am.id));
  });
});
