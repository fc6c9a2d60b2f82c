// The simulated model honours the upstream timeouts, as a real vendor's
// stream read through chatd's HTTPS client would: a stall ends as a transient
// upstream_timeout after --upstream-idle-timeout-ms (once text flowed) or
// --upstream-first-token-timeout-ms (before any), is continued up to
// --continue-attempts times per answer in all, and then ends the answer as
// error/upstream_timeout with the text so far kept.

import test from 'node:test';
import assert from 'node:assert/strict';
import { withChatd, createSession, send, waitTerminal, getContent } from './support/chatd.mjs';

const ARGS = [
  '--sim-tokens-per-second', '0', '--sim-min-tokens', '50', '--sim-max-tokens', '50',
  '--sim-stall-after', '3',
  '--upstream-idle-timeout-ms', '150', '--upstream-first-token-timeout-ms', '150',
];

for (const attempts of [0, 2]) {
  test(`zb: a stalled simulated stream ends upstream_timeout (--continue-attempts ${attempts})`, { timeout: 60000 }, async () => {
    await withChatd({ args: [...ARGS, '--continue-attempts', String(attempts)], name: `chatd-zb-${attempts}` }, async (srv) => {
      const session = await createSession(srv, { title: 'stall' });
      const { assistant_message: am } = await send(srv, session.id, 'hello');
      const ended = await waitTerminal(srv, am.id, 30000);
      assert.equal(ended.status, 'error', JSON.stringify(ended));
      const content = await getContent(srv, am.id);
      assert.equal(content.status, 'error');
      assert.ok(content.content.length > 0, 'the text before the stall is kept');
      const history = await srv.api('GET', `/sessions/${session.id}/messages`);
      const stored = history.json.messages.find((m) => m.id === am.id);
      assert.equal(stored.error?.code, 'upstream_timeout', JSON.stringify(stored));
      // Continued exactly --continue-attempts times: one per answer, not per stall.
      const continued = srv.stderrText().split('\n').filter((l) => l.includes(am.id) && l.includes('continuing its partial answer'));
      assert.equal(continued.length, attempts, srv.stderrText().slice(-3000));
      if (attempts > 0) assert.match(continued.at(-1), new RegExp(`continuation ${attempts} of ${attempts}`));
    });
  });
}
