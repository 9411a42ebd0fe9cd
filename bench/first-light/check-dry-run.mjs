// CI's check of the first-light dry run (.ci/run): the summary must list every part and every benchmark
// row (the list here is written independently of run.sh's, so a part dropped there shows), none failed,
// and the files the device tool brings back must exist. A timeout or a part not run is reported, not
// failed: on a slow shared machine that is no error.
//   node bench/first-light/check-dry-run.mjs OUTDIR
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node bench/first-light/check-dry-run.mjs OUTDIR');
const problems = [];
for (const f of ['summary.md', 'bench.jsonl', 'session.log', 'first-light.tar.gz'])
  if (!existsSync(join(dir, f))) problems.push(`${f} is missing from ${dir}`);
const summary = existsSync(join(dir, 'summary.md')) ? readFileSync(join(dir, 'summary.md'), 'utf8') : '';
const rows = summary.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| part ') && !l.startsWith('| benchmark row '));
const status = (l) => l.split('|')[2]?.trim();
const expected = [
  'info/nvidia-smi',
  'info/build',
  'golden/golden.test',
  'golden/unet.golden.test',
  'golden/rng.test',
  'golden/tensor.test',
  'golden/checkpoint.test',
  'sanitizer/plain',
  'sanitizer/memcheck',
  'sanitizer/racecheck',
  'sanitizer/synccheck',
  'oom',
  'bench',
  'train kintsugi',
  'train pytorch eager',
  'sample kintsugi',
  'sample pytorch eager',
  'gsure kintsugi',
  'train pytorch compile',
  'sample pytorch compile',
];
for (const name of expected) {
  const row = rows.find((l) => l.startsWith(`| ${name} |`) || l.startsWith(`| ${name} `));
  if (!row) problems.push(`the summary has no row for ${name}`);
  else if (!['passed', 'timeout', 'not run', 'skipped'].includes(status(row))) problems.push(`${name}: ${status(row)}: ${row}`);
}
for (const l of rows) if (status(l) === 'failed' && !problems.some((p) => p.includes(l))) problems.push(`failed: ${l}`);
if (problems.length) {
  console.error(`first-light dry run: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
const timeouts = rows.filter((l) => status(l) === 'timeout').length;
console.log(
  `first-light dry run: all ${expected.length} parts and rows listed, none failed${timeouts ? ` (${timeouts} timed out on this machine)` : ''}`,
);
