// Imported before `ai`, whose module-level zod schemas read this setting when
// they are built. Without it zod probes whether it may compile validators with
// `new Function`: chatd's CSP (script-src 'self') refuses that, and the browser
// reports the refused probe as a violation even though zod catches it.
// jitless skips the probe, as zod advises for strict CSPs.

import { config } from 'zod';

config({ jitless: true });
