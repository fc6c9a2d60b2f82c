// The page's sign-in state: 'checking' (on load), 'signed-in' or
// 'signed-out', and who is signed in ({ user_id, expires_at }).
//
// The page never keeps a token. signIn(token) sends a pasted token (JWT or
// API key) once to POST /api/v1/auth/session, which answers with an HttpOnly
// session cookie; every later request relies on that cookie. check() asks
// GET /api/v1/auth/session who the page is; until the answer names a user the
// owner calls nothing else. ended() is for a 401 on any later request (the
// cookie expired or was revoked). In chatd's `--auth none` mode the answer is
// always the local user with no expiry (isLocal): no sign-in needed.
//
// No DOM: the API client (api.js) and the clock are injected; the owner hears
// of changes through onSignedIn(who) and onSignedOut(why), why being
// 'not-signed-in' (found so on load), 'ended' (a request was refused) or
// 'signed-out' (the person signed out).

export const LOCAL_USER = 'usr_local';
export const RECHECK_MIN_MS = 2000;
export const RECHECK_MAX_MS = 30000;

const realClock = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
};

// chatd in `--auth none` mode: one local user, no cookie, nothing to sign out of.
export function isLocal(who) {
  return Boolean(who) && who.user_id === LOCAL_USER && who.expires_at == null;
}

export class SignIn {
  // onUnreachable(err): the check failed for another reason than a refusal
  // (network down, chatd restarting); it is retried, less and less often.
  constructor({ api, onSignedIn = () => {}, onSignedOut = () => {}, onUnreachable = () => {}, clock = realClock }) {
    this.api = api;
    this.onSignedIn = onSignedIn;
    this.onSignedOut = onSignedOut;
    this.onUnreachable = onUnreachable;
    this.clock = clock;
    this.state = 'checking';
    this.who = null;
    this.recheckMs = RECHECK_MIN_MS;
  }

  get signedIn() {
    return this.state === 'signed-in';
  }

  async check() {
    try {
      this.enter(await this.api.whoAmI());
    } catch (err) {
      if (err.status === 401) {
        this.leave('not-signed-in');
      } else if (err.status === 404) {
        // A chatd without browser sessions: its API decides, request by request.
        this.enter(null);
      } else {
        this.onUnreachable(err);
        this.clock.setTimeout(() => this.check(), this.recheckMs);
        this.recheckMs = Math.min(this.recheckMs * 2, RECHECK_MAX_MS);
      }
    }
  }

  // Returns '' when signed in, else a line to show under the form.
  async signIn(token) {
    if (!token || this.signedIn) return '';
    try {
      this.enter(await this.api.signIn(token));
      return '';
    } catch (err) {
      if (err.status === 401) return 'That token was not accepted. Check it and try again.';
      if (err.status === 404) return 'This chatd has no browser sign-in.';
      return `Could not sign in: ${err.message}`;
    }
  }

  // Returns '' when signed out, else why not (the cookie may still be valid).
  async signOut() {
    try {
      await this.api.signOut();
    } catch (err) {
      if (err.status !== 401) return `Could not sign out: ${err.message}`;
    }
    this.leave('signed-out');
    return '';
  }

  // A request made while signed in was answered 401: the session is over.
  ended() {
    if (this.signedIn) this.leave('ended');
  }

  enter(who) {
    this.state = 'signed-in';
    this.who = who || null;
    this.recheckMs = RECHECK_MIN_MS;
    this.onSignedIn(this.who);
  }

  leave(why) {
    this.state = 'signed-out';
    this.who = null;
    this.onSignedOut(why);
  }
}
