// The long fuzz run (the short one is test/fuzz/parsers.test.ts in `npm test`): by default 100,000
// generated inputs for every parser and loader, with the same properties and bounds (see
// test/fuzz/harness.ts). Prints one line per target with its counts; exits 1 on the first failure,
// after fast-check's report (seed, path and the shrunk input) to rerun it with --seed.
//
//   nice -n 10 node --import ./test/support/register-ts.mjs scripts/fuzz.ts [--runs 100000] [--target png] [--seed 1]
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from '../test/fuzz/harness.ts';
import { makeTargets } from '../test/fuzz/targets.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '100000' }, target: { type: 'string', multiple: true }, seed: { type: 'string' } },
});
const runs = Number(values.runs);
if (!Number.isSafeInteger(runs) || runs < 1) throw new TypeError(`--runs: expected a positive integer, got ${values.runs}`);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);

process.env.KINTSUGI_DEVICE ??= 'cpu';
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'kintsugi-fuzz-')); // in memory where possible: a file per input
let failed = false;
try {
  const targets = await makeTargets(dir);
  const names = targets.map((t) => t.name);
  for (const name of values.target ?? [])
    if (!names.includes(name)) throw new TypeError(`--target: expected one of ${names.join(', ')}, got ${name}`);
  console.log(`fuzz: ${runs} inputs per target, seed ${seed}, node ${process.version}, ${new Date().toISOString()}`);
  for (const [i, target] of targets.entries()) {
    if (values.target && !values.target.includes(target.name)) continue;
    const t0 = performance.now();
    try {
      const r = await fuzz(
        target,
        {
          runs,
          seed: seed + i,
          every: Math.max(1000, Math.floor(runs / 10)),
          onProgress: (n) => process.stderr.write(`  ${target.name}: ${n}\r`),
        },
        i,
      );
      const errors = [...r.errors]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      console.log(
        `${target.name.padEnd(19)} ${r.inputs} inputs: ${r.accepted} parsed, ${r.inputs - r.accepted} refused with a typed error; ` +
          `max allocation ${r.maxAllocated} B, peak RSS +${(r.rssGrowth / 2 ** 20).toFixed(0)} MiB over the run (largest jump in one input ${(r.maxRssJump / 2 ** 20).toFixed(1)} MiB), ${((performance.now() - t0) / 1000).toFixed(0)} s; errors: ${errors}`,
      );
    } catch (e) {
      failed = true;
      console.log(`FAILED ${(e as Error).message}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
