// What bench/summarize_*.mjs share: reading run_load.sh's RESULT lines, the
// checks a run must pass, medians and number formatting.
import { readFileSync } from 'node:fs';

// One JSON object per line.
export const readRuns = (path) =>
  readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));

// Every check of run_load.sh held: no failed or timed-out stream, the stored
// text equal to the streamed one, no warning in chatd's log.
export const passed = (r) =>
  r.load_exit === 0 && r.streams_failed === 0 && !r.timed_out && r.content_mismatches === 0 &&
  r.chatd_warnings === 0;

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export const fmt = (x, d) => (Number.isFinite(x) ? x.toLocaleString('en-US', {
  minimumFractionDigits: d, maximumFractionDigits: d }) : '–');

export const perToken = (x, r) => (r.tokens_total > 0 ? x / r.tokens_total : NaN);
