// The long kill -9 run (the short one is test/reliability/crash.test.ts): KILLS random SIGKILLs per kind
// of state (training checkpoints, measurement-set rewrites, DiffEM rounds), each followed by a check that
// the state loads and is one the work wrote, and for training and DiffEM a comparison of the resumed
// result with an uninterrupted run's. Prints the counts, including how many kills landed inside a write.
//
//   nice -n 10 node --import ./test/support/register-ts.mjs scripts/crash-kill.ts [--kills 100] [--mode train] [--seed 1]
import { parseArgs } from 'node:util';
import { killLoop, referenceResult, type CrashMode } from '../test/reliability/crash-work.ts';

const { values } = parseArgs({
  options: { kills: { type: 'string', default: '100' }, mode: { type: 'string', multiple: true }, seed: { type: 'string', default: '1' } },
});
const kills = Number(values.kills);
if (!Number.isSafeInteger(kills) || kills < 1) throw new TypeError(`--kills: expected a positive integer, got ${values.kills}`);
const modes = (values.mode ?? ['train', 'measurements', 'diffem']) as CrashMode[];
console.log(`crash-kill: ${kills} SIGKILLs per kind, seed ${values.seed}, ${new Date().toISOString()}`);
let failed = false;
for (const mode of modes) {
  const t0 = performance.now();
  try {
    const reference = mode === 'measurements' ? undefined : await referenceResult(mode);
    const r = await killLoop(mode, kills, reference ? reference.workMs * 1.2 : 1000, Number(values.seed), reference?.result, (p) =>
      process.stderr.write(`  ${mode}: ${p.kills} kills, ${p.midWrite} inside a write\r`),
    );
    const seen = new Map<string, number>();
    for (const s of r.states) seen.set(s, (seen.get(s) ?? 0) + 1);
    console.log(
      `${mode.padEnd(12)} ${r.kills} kills, ${r.midWrite} inside a write (a temporary file left behind); every state loaded; ` +
        `${r.identical === undefined ? '' : `resumed result ${r.identical ? 'bit-identical to' : 'DIFFERENT from'} the uninterrupted run; `}` +
        `${((performance.now() - t0) / 1000).toFixed(0)} s; states seen: ${[...seen].map(([k, n]) => `${k} x${n}`).join(', ')}`,
    );
    if (r.identical === false) failed = true;
  } catch (e) {
    failed = true;
    console.log(`${mode}: FAILED: ${(e as Error).message}`);
  }
}
process.exitCode = failed ? 1 : 0;
