// The summary of GPU first light (bench/first-light/run.sh): one markdown table of every planned part
// (passed, failed, timeout, not run) with the reason, read from whatever result files exist, so it is
// right after a partial run too; then the benchmark rows of bench.jsonl. Prints to stdout.
//   node bench/first-light/summary.mjs --work DIR --bench FILE [--check]
// --check: print nothing but problems, and exit 1 when a part or a benchmark row failed (timeouts and
// parts not run are reported, not failures: a slow machine is no error).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const work = arg('work', null);
const benchFile = arg('bench', work && join(work, 'bench.jsonl'));
if (!work) throw new Error('summary.mjs: --work DIR is required');
const check = process.argv.includes('--check');

const read = (rel) => {
  const p = join(work, rel);
  return existsSync(p) ? readFileSync(p, 'utf8') : null;
};
const json = (rel) => {
  const t = read(rel);
  if (t === null) return null;
  try {
    return JSON.parse(t);
  } catch {
    return null;
  }
};
const jsonl = (text) =>
  (text ?? '')
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return []; // a line cut by a kill
      }
    });
const lastLines = (text, n = 1) =>
  (text ?? '')
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' / ');
const cell = (s) =>
  String(s ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ')
    .slice(0, 400);

/** passed | failed | timeout | not run, and the reason, for one part from its record and files. */
function classify(name, rec) {
  if (!rec) return { status: 'not run', detail: 'the command ended before this part (stopped from outside?)' };
  if (rec.skipped) return { status: 'not run', detail: rec.skipped };
  if (rec.running) return { status: 'not run', detail: `running when the command was stopped (its limit was ${rec.limit} s)` };
  const logText = rec.log ? read(rec.log) : null;
  const timedOut = rec.rc === 124 || rec.rc === 137;
  const base = timedOut
    ? { status: 'timeout', detail: `stopped at its ${rec.limit} s limit` }
    : { status: rec.rc === 0 ? 'passed' : 'failed', detail: '' };
  const add = (d) => ({ ...base, detail: [base.detail, d].filter(Boolean).join('; ') });

  if (name === 'info/nvidia-smi') {
    const gpu = (logText ?? '').match(/NVIDIA [A-Z][\w -]+?(?=\s{2}|\|)/)?.[0]?.trim();
    const driver = (logText ?? '').match(/Driver Version:\s*([\d.]+)/)?.[1];
    return add(rec.rc === 0 ? [gpu, driver && `driver ${driver}`].filter(Boolean).join(', ') || lastLines(logText) : lastLines(logText));
  }
  if (name === 'info/build') {
    const info =
      json('info/build.json') ??
      (() => {
        try {
          return JSON.parse((logText ?? '').slice(0, (logText ?? '').lastIndexOf('}') + 1));
        } catch {
          return null;
        }
      })();
    if (!info) return add(lastLines(logText, 2));
    const dev = info.devices?.find((d) => d.type === 'cuda');
    return add(
      `binary ${info.build?.cuda ? `with CUDA (${info.build.cudaArchitectures})` : 'CPU only'}; ` +
        (info.cuda?.deviceCount > 0
          ? `${info.cuda.deviceCount} CUDA device(s)${dev ? `: ${dev.name}, cc ${dev.computeCapability}` : ''}`
          : `CUDA: ${info.cuda?.reason}`) +
        (rec.rc !== 0 ? `; ${lastLines(logText)}` : ''),
    );
  }
  if (name.startsWith('golden/')) {
    const file = name.slice('golden/'.length);
    const r = json(`golden/${file}.json`);
    if (!r) return add(`no JSON report; ${lastLines(logText, 2)}`);
    const failedTests = r.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === 'failed'));
    const suiteErrors = r.testResults
      .filter((f) => f.status === 'failed' && f.assertionResults.length === 0)
      .map((f) => lastLines(f.message));
    const counts = `${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`;
    const first = failedTests.slice(0, 3).map((a) => `${a.fullName}: ${String(a.failureMessages?.[0] ?? '').split('\n')[0]}`);
    const status = timedOut ? 'timeout' : r.numFailedTests > 0 || suiteErrors.length || rec.rc !== 0 ? 'failed' : 'passed';
    const none = r.numPassedTests === 0 && status === 'passed' ? ' (no CUDA case ran here)' : '';
    return { status, detail: [base.detail, counts + none, ...suiteErrors, ...first].filter(Boolean).join('; ') };
  }
  if (name.startsWith('sanitizer/')) {
    const tool = name.slice('sanitizer/'.length);
    const rows = jsonl(read(`sanitizer/${tool}.jsonl`));
    const done = rows.find((r) => r.done);
    const cases = rows.filter((r) => !r.done);
    const bad = cases.filter((r) => !r.ok).map((r) => `${r.name}: ${r.error}`);
    const progress = done ? `${done.cases} cases` : `${cases.length} cases done${cases.length ? `, last ${cases.at(-1).name}` : ''}`;
    if (tool === 'plain') {
      const status = timedOut ? 'timeout' : bad.length || rec.rc !== 0 ? 'failed' : 'passed';
      return {
        status,
        detail: [base.detail, progress, ...bad.slice(0, 3), rec.rc !== 0 && !bad.length ? lastLines(logText, 2) : '']
          .filter(Boolean)
          .join('; '),
      };
    }
    const text = logText ?? '';
    if (/Device not supported|no CUDA-capable device|unable to (initialize|find)/i.test(text) && !cases.length)
      return { status: 'not run', detail: `compute-sanitizer could not use the device: ${lastLines(text)}` };
    const errors = Number(text.match(/ERROR SUMMARY: (\d+) error/)?.[1] ?? NaN);
    // The first report: its "=========" lines up to the kernel it names.
    const report = text
      .split('\n')
      .filter((l) => /^=+\s+\S/.test(l) && !/ERROR SUMMARY|COMPUTE-SANITIZER/.test(l))
      .slice(0, 3)
      .map((l) => l.replace(/^=+\s+/, ''));
    const status = timedOut ? 'timeout' : rec.rc === 86 || errors > 0 || bad.length || rec.rc !== 0 ? 'failed' : 'passed';
    return {
      status,
      detail: [
        base.detail,
        Number.isNaN(errors) ? 'no error summary' : `${errors} sanitizer errors`,
        progress,
        ...report,
        ...bad.slice(0, 2),
        status === 'failed' && !report.length && !bad.length ? lastLines(text, 2) : '',
      ]
        .filter(Boolean)
        .join('; '),
    };
  }
  if (name === 'oom') {
    let r = null;
    try {
      r = JSON.parse(logText ?? '');
    } catch {}
    if (!r) return add(lastLines(logText, 2));
    const bad = r.checks.filter((c) => c.ok === false).map((c) => `${c.name}: ${JSON.stringify(c.detail ?? '')}`);
    const counts = `${r.passed} passed, ${r.failed} failed${r.notApplicable ? `, ${r.notApplicable} not applicable` : ''} (${r.device})`;
    return {
      ...base,
      status: timedOut ? 'timeout' : r.failed || rec.rc !== 0 ? 'failed' : 'passed',
      detail: [base.detail, counts, ...bad.slice(0, 2)].filter(Boolean).join('; '),
    };
  }
  if (name === 'bench') return add(rec.rc !== 0 ? lastLines(logText, 2) : 'rows below');
  return add(lastLines(logText));
}

const planned = (read('planned.txt') ?? '').split('\n').filter(Boolean);
const parts = planned.map((name) => {
  const rec = json(`parts/${name.replace(/\//g, '-')}.json`);
  return { name, seconds: rec?.seconds, ...classify(name, rec) };
});

// Benchmark rows: every kind bench.mjs writes, in its order; a kind with no row did not run.
const BENCH_KINDS = [
  'train kintsugi',
  'train pytorch eager',
  'sample kintsugi',
  'sample pytorch eager',
  'gsure kintsugi',
  'train pytorch compile',
  'sample pytorch compile',
];
const rows = jsonl(existsSync(benchFile) ? readFileSync(benchFile, 'utf8') : '');
const benchRec = json('parts/bench.json');
const eager = (kind) => rows.find((r) => r.row.startsWith(kind) && r.status === 'passed');
const fig = (r) => {
  if (r.status !== 'passed') return '';
  const ms = r.median_ms ?? r.ms;
  const per = r.median_ms !== undefined ? 'ms/step' : 'ms';
  const extra = [
    r.img_per_s && `${r.img_per_s.toFixed(0)} img/s`,
    r.tflops && `${r.tflops.toFixed(2)} TFLOP/s`,
    r.ratio_to_supervised && `${r.ratio_to_supervised.toFixed(2)}x the supervised step`,
    r.peak_bytes && `peak ${(r.peak_bytes / 2 ** 20).toFixed(0)} MiB`,
  ];
  return [`${ms.toFixed(2)} ${per}`, ...extra].filter(Boolean).join(', ');
};
const bench = BENCH_KINDS.map((kind) => {
  const r = rows.find((x) => x.row.startsWith(kind));
  if (!r)
    return {
      row: kind,
      status: 'not run',
      detail: benchRec?.skipped ?? (benchRec ? 'the benchmark stopped before this row' : 'the benchmark did not run'),
    };
  let vs = '';
  const mine =
    r.status === 'passed' && r.impl === 'kintsugi' && kind !== 'gsure kintsugi' ? eager(kind.replace('kintsugi', 'pytorch eager')) : null;
  if (mine) {
    const a = r.median_ms ?? r.ms,
      b = mine.median_ms ?? mine.ms;
    vs = `PyTorch eager / kintsugi = ${(b / a).toFixed(2)}x (>1: kintsugi faster)`;
  }
  return { row: r.row, status: r.status, result: fig(r), detail: [r.reason ?? r.error ?? '', vs].filter(Boolean).join('; ') };
});

const all = [...parts.map((p) => ({ what: p.name, ...p })), ...bench.map((b) => ({ what: `bench: ${b.row}`, ...b }))];
if (check) {
  const failed = all.filter((p) => p.status === 'failed');
  for (const p of failed) console.error(`first-light: FAILED ${p.what}: ${p.detail}`);
  process.exit(failed.length ? 1 : 0);
}

const info = json('info/build.json');
const start = Number(process.env.FIRST_LIGHT_START ?? NaN);
const firstBench = rows[0];
const tally = (s) => all.filter((p) => p.status === s).length;
const out = [];
out.push(`# GPU first light${process.env.FIRST_LIGHT_DRY === '1' ? ' (CPU dry run)' : ''}`);
out.push('');
out.push(
  `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ` +
    `device: ${info?.devices?.find((d) => d.type === 'cuda')?.name ?? firstBench?.deviceName ?? (process.env.FIRST_LIGHT_DRY === '1' ? 'cpu' : 'unknown')}; ` +
    `commit ${process.env.KINTSUGI_COMMIT ?? firstBench?.commit ?? 'unknown'}; ` +
    (Number.isFinite(start)
      ? `${Math.round(Date.now() / 1000 - start)} s of a ${process.env.FIRST_LIGHT_BUDGET_S} s budget so far; `
      : '') +
    `${tally('passed')} passed, ${tally('failed')} failed, ${tally('timeout')} timed out, ${tally('not run')} not run.`,
);
out.push('');
out.push('| part | status | time | detail |');
out.push('|---|---|---|---|');
for (const p of parts) out.push(`| ${p.name} | ${p.status} | ${p.seconds !== undefined ? `${p.seconds} s` : ''} | ${cell(p.detail)} |`);
out.push('');
out.push('| benchmark row | status | result | detail |');
out.push('|---|---|---|---|');
for (const b of bench) out.push(`| ${b.row} | ${b.status} | ${cell(b.result)} | ${cell(b.detail)} |`);
console.log(out.join('\n'));
