// Reads the RESULT lines of bench/compare_stores.sh (one JSON object per line)
// and prints, per workload (label), a Markdown table: the median of each
// figure over the runs of each store, and PostgreSQL ÷ SQLite.
//
//   node bench/summarize_stores.mjs results.jsonl
import { fmt, median, passed, perToken, readRuns } from './results.mjs';

const runs = readRuns(process.argv[2]);

// [row name, how to read it from one run, decimals]
const figures = [
  ['runs passing every check', null, 0],
  ['delivered tokens/s', (r) => r.delivered_tokens_per_s, 0],
  ['latency p50 (ms)', (r) => r.latency_p50_ms, 2],
  ['latency p99 (ms)', (r) => r.latency_p99_ms, 2],
  ['latency max (ms)', (r) => r.latency_max_ms, 1],
  ['chatd CPU per token (µs)', (r) => r.chatd_cpu_us_per_token, 1],
  ['PostgreSQL server CPU per token (µs)', (r) => (r.db === 'postgres' ? r.db_cpu_us_per_token : 0), 1],
  ['chatd + server CPU per token (µs)', (r) => r.chatd_cpu_us_per_token + (r.db_cpu_us_per_token ?? 0), 1],
  ['commits/s', (r) => r.commits_per_s, 1],
  ['tokens per commit', (r) => r.tokens_per_commit, 1],
  // SQLite: chatd's write() to files (wchar; its sockets use sendmsg, not
  // counted). PostgreSQL: the server's write() to files (it sends with send()).
  ['store file write() bytes per token', (r) => (r.db === 'postgres'
    ? r.db_file_write_syscall_bytes_per_token
    : perToken(r.file_write_syscall_bytes + r.client_socket_bytes, r)), 0],
  ['PostgreSQL WAL bytes per token', (r) => (r.db === 'postgres' ? perToken(r.db_wal_bytes, r) : NaN), 0],
  ['chatd peak RSS (MiB)', (r) => r.chatd_peak_rss_kb / 1024, 1],
];

const labels = [...new Set(runs.map((r) => r.label))];
for (const label of labels) {
  const of = (db) => runs.filter((r) => r.label === label && r.db === db);
  const sqlite = of('sqlite');
  const pg = of('postgres');
  console.log(`### ${label}\n`);
  console.log(`| | SQLite | PostgreSQL | PostgreSQL ÷ SQLite |`);
  console.log(`|---|---|---|---|`);
  for (const [name, read, d] of figures) {
    if (!read) {
      const count = (rs) => `${rs.filter(passed).length} of ${rs.length}`;
      console.log(`| ${name} | ${count(sqlite)} | ${count(pg)} | |`);
      continue;
    }
    const a = median(sqlite.map(read));
    const b = median(pg.map(read));
    const ratio = a > 0 && Number.isFinite(b) ? `${fmt(b / a, 2)}×` : '';
    const range = (rs) => {
      const v = rs.map(read).filter(Number.isFinite);
      if (v.length < 2) return '';
      return ` (${fmt(Math.min(...v), d)}–${fmt(Math.max(...v), d)})`;
    };
    console.log(`| ${name} | ${fmt(a, d)}${range(sqlite)} | ${fmt(b, d)}${range(pg)} | ${ratio} |`);
  }
  console.log('');
}
