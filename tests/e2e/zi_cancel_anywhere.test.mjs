// A cancel on any node stops the answer wherever it runs (DESIGN §7, I4;
// issue 11 point 3): three chatd nodes on one PostgreSQL database and one
// fake OpenAI-compatible upstream; an answer runs on A and is cancelled on B.
// The upstream's socket log shows A closing the request within a second, the
// cancel answers with the cancelled message and its text, and nothing is
// appended after it.
//
// In the e2e_pg_ variant only.

import test from 'node:test';
import assert from 'node:assert/strict';
import {
  withNodes, createSession, send, getContent, waitFor, delay, ON_POSTGRES,
} from './support/chatd.mjs';
import { startFakeUpstream, openaiEvents, NO_PROXY_ENV } from './support/provider.mjs';
import { openStream } from './support/sse.mjs';

const SKIP = !ON_POSTGRES && 'runs in the e2e_pg_ variant: several nodes share one PostgreSQL database';

test('zi: a cancel on B stops the answer A runs and closes its upstream request within a second', { skip: SKIP }, async () => {
  const up = await startFakeUpstream();
  await withNodes(3, ['--provider', 'openai', '--base-url', `${up.url}/v1`], async (nodes) => {
    const [a, b, c] = nodes;
    const pieces = ['Bonjour ', 'le ', 'monde — ', '東京 '];
    // The upstream sends the text, then nothing more: only a cancel ends it.
    up.script([{ events: openaiEvents(pieces, { finish: null, usage: null, done: false }), fault: { after: 1 + pieces.length, kind: 'stall' } }]);
    const session = await createSession(a);
    const { assistant_message: am } = await send(a, session.id, 'Say hello slowly.');
    const text = pieces.join('');
    await waitFor(async () => (await getContent(b, am.id)).content === text,
      { timeoutMs: 10000, message: "the upstream's text to be stored" });
    const follower = openStream(c.url(`/api/v1/chat/messages/${am.id}/stream`));

    const askedAt = Date.now();
    const cancel = await b.api('POST', `/messages/${am.id}/cancel`);
    const answeredAt = Date.now();
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.json.status, 'cancelled');
    assert.equal(cancel.json.content, text);
    assert.equal(cancel.json.finish_reason, 'cancelled');
    const r = up.requests[0];
    assert.equal(r.responseEndedAt, null, 'the upstream had finished before the cancel');
    await waitFor(() => r.closedAt !== null, { timeoutMs: 5000, message: 'A to close the upstream request' });
    assert.ok(r.closedAt - askedAt <= 1000, `A closed the upstream ${r.closedAt - askedAt} ms after the cancel on B`);
    assert.ok(answeredAt - askedAt <= 2000, `the cancel answered after ${answeredAt - askedAt} ms`);
    assert.match(a.stderrText(), new RegExp(`message ${am.id}: cancelled on another node`));

    // Every node reads the same end; a second cancel anywhere is the same answer.
    for (const node of nodes) {
      const m = await getContent(node, am.id);
      assert.equal(m.status, 'cancelled', node.name);
      assert.equal(m.content, text, node.name);
    }
    const again = await c.api('POST', `/messages/${am.id}/cancel`);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.version, cancel.json.version);
    const end = await follower.waitForTerminal();
    assert.equal(end.data.status, 'cancelled');
    // Nothing is appended afterwards, and nothing is retried.
    await delay(300);
    assert.equal((await getContent(a, am.id)).content, text);
    assert.equal(up.requests.length, 1);
    // The session is free for the next turn, on any node.
    up.script([{ events: openaiEvents(['Encore.']) }]);
    const next = await send(c, session.id, 'Again?');
    assert.equal(next.assistant_message.status, 'generating');
  }, { env: NO_PROXY_ENV }).finally(() => up.close());
});
