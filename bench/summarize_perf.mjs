// Reads the RESULT lines of bench/perf_suite.sh (one JSON object per line)
// and prints, per workload (label), a Markdown table: the median of each
// figure over the runs of each target, the range in brackets, and each
// chatd target's ratio to the floor. With --docs FILE it also replaces the
// part of FILE between the perf-suite markers with the same tables, the
// machine and the commands.
//
//   node bench/summarize_perf.mjs results.jsonl [--commands FILE] [--repeat K] [--docs FILE]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fmt, median, passed, perToken, readRuns } from './results.mjs';
import os from 'node:os';

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const runs = readRuns(args[0]);

const targetOf = (r) => (r.mode === 'floor' ? 'floor' : r.db === 'postgres' ? 'pg' : r.mode);
const targetNames = { floor: 'floor', group: 'chatd', 'per-chunk': 'chatd per-chunk', pg: 'chatd PostgreSQL' };
const cpu = (r) => r.chatd_cpu_us_per_token + (r.db === 'postgres' ? r.db_cpu_us_per_token ?? 0 : 0);

// [row, read one run (NaN: not applicable), decimals, compare with the floor]
const figures = [
  ['runs passing every check', null, 0, false],
  ['delivered tokens/s', (r) => r.delivered_tokens_per_s, 0, false],
  ['**CPU per token (µs)**, all of it', cpu, 1, true],
  ['of it: chatd I/O thread', (r) => (r.mode === 'floor' ? NaN : r.chatd_io_cpu_us_per_token), 1, false],
  ['of it: chatd store threads (SQLite)', (r) => (r.mode === 'floor' ? NaN : r.chatd_store_cpu_us_per_token), 1, false],
  ['of it: PostgreSQL server', (r) => (r.db === 'postgres' ? r.db_cpu_us_per_token : NaN), 1, false],
  ['latency p50 (ms)', (r) => r.latency_p50_ms, 2, true],
  ['latency p99 (ms)', (r) => r.latency_p99_ms, 2, true],
  ['latency max (ms)', (r) => r.latency_max_ms, 1, true],
  ['token gap p50 (ms)', (r) => r.gap_p50_ms, 2, false],
  ['token gap p99 (ms)', (r) => r.gap_p99_ms, 2, true],
  ['first token after send p50 (ms)', (r) => r.ttft_p50_ms, 2, false],
  ['first token after send p99 (ms)', (r) => r.ttft_p99_ms, 2, true],
  ['commits/s', (r) => (r.mode === 'floor' ? NaN : r.commits_per_s), 1, false],
  ['tokens per commit', (r) => (r.mode === 'floor' ? NaN : r.tokens_per_commit), 1, false],
  // SQLite: chatd's write() to files (its sockets use sendmsg, not counted).
  // PostgreSQL: the server's write() to files.
  ['store bytes per token (file write())', (r) => (r.mode === 'floor' ? NaN : r.db === 'postgres'
    ? r.db_file_write_syscall_bytes_per_token
    : perToken(r.file_write_syscall_bytes + r.client_socket_bytes, r)), 0, false],
  ['peak RSS (MiB)', (r) => r.chatd_peak_rss_kb / 1024, 1, true],
  // --idle-streams: RSS grown while they were all open, per stream.
  ['idle session stream, RSS each (bytes)', (r) => r.idle_bytes_per_stream ?? NaN, 0, true],
  // RSS grown from before the first send to the middle of the first answers,
  // over the streams live then (every cache and buffer included), and the
  // text each had received by then.
  ['live stream, RSS each (bytes)', (r) => r.live_bytes_per_stream ?? NaN, 0, true],
  ['of it: its text so far (bytes)', (r) => r.live_text_bytes_per_stream ?? NaN, 0, false],
];

function table(label) {
  const lines = [`### ${label}`, ''];
  const ofLabel = runs.filter((r) => r.label === label);
  const targets = ['floor', 'group', 'per-chunk', 'pg'].filter((t) => ofLabel.some((r) => targetOf(r) === t));
  const header = ['', ...targets.flatMap((t) => (t === 'floor' ? [targetNames[t]] : [targetNames[t], '÷ floor']))];
  lines.push(`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`);
  const floorRuns = ofLabel.filter((r) => targetOf(r) === 'floor');
  for (const [name, read, d, compare] of figures) {
    const cells = [name];
    for (const t of targets) {
      const rs = ofLabel.filter((r) => targetOf(r) === t);
      if (!read) {
        cells.push(`${rs.filter(passed).length} of ${rs.length}`);
        if (t !== 'floor') cells.push('');
        continue;
      }
      const v = rs.map(read).filter(Number.isFinite);
      const m = median(v);
      const range = v.length > 1 ? ` (${fmt(Math.min(...v), d)}–${fmt(Math.max(...v), d)})` : '';
      cells.push(Number.isFinite(m) ? `${fmt(m, d)}${range}` : '–');
      if (t === 'floor') continue;
      const f = median(floorRuns.map(read));
      cells.push(compare && f > 0 && Number.isFinite(m) ? `**${fmt(m / f, 2)}×**` : '');
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  return lines.join('\n');
}

const labels = [...new Set(runs.map((r) => r.label))];
const tables = labels.map(table).join('\n');
console.log(tables);

const docs = option('--docs');
if (docs) {
  const begin = '<!-- perf-suite:begin (written by bench/perf_suite.sh; edit the script, not this) -->';
  const end = '<!-- perf-suite:end -->';
  const text = readFileSync(docs, 'utf8');
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${docs} has no perf-suite markers`);
  const model = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? 'unnamed';
  const git = (cmd) => execFileSync('git', cmd, { encoding: 'utf8' }).trim();
  const heads = [...new Set(runs.map((r) => `${r.git_head}${r.git_dirty ? ' (src/ modified)' : ''}`))];
  const commands = option('--commands') ? readFileSync(option('--commands'), 'utf8').trim() : '';
  const section = [
    begin,
    `## Against the floor (${new Date().toISOString().slice(0, 10)}, \`bench/perf_suite.sh\`)`,
    '',
    `- Machine: ${os.cpus().length} CPUs (${model}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
      `Linux ${os.release()}; chatd, the floor, the generator and PostgreSQL share the cores.`,
    `- Binaries built from ${heads.join(', ')} (HEAD was ${git(['rev-parse', '--short', 'HEAD'])}); ` +
      `${option('--repeat') ?? '?'} runs per target and workload, the targets alternating.`,
    '- The floor is `bench/floor/floor_server.cpp`: chatd\'s HTTP shape (sessions, send, the ' +
      'message\'s SSE stream, content) on Boost.Beast, one thread, the same stamped tokens at the ' +
      'same rate, one write per token event, its timers on a 1 ms grid, and no store. ' +
      '"÷ floor" is chatd\'s median over the floor\'s: 2.00× is the aim for CPU per token.',
    '- CPU counts every thread of chatd (and, for PostgreSQL, every server process) from the ' +
      'first send to the last stream\'s end, over every token delivered; latency is from the ' +
      'token\'s scheduled emission to its arrival; the gap is between consecutive tokens of a ' +
      'stream (20 ms expected at 50/s, 0 for tokens that came together); the first token is ' +
      'timed from the start of the send. Medians, the runs\' range in brackets.',
    '',
    'Commands (`bench/perf_suite.sh` runs them all, alternating):',
    '',
    '```sh',
    commands,
    '```',
    '',
    tables,
    end,
  ].join('\n');
  writeFileSync(docs, text.slice(0, from) + section + text.slice(to + end.length));
}
