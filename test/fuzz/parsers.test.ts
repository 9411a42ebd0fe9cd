// The short fuzz run of `npm test`: a few thousand generated inputs per parser and loader (the long
// run is scripts/fuzz.ts). A failure prints fast-check's seed and the shrunk input; rerun it with
// `node --import ./test/support/register-ts.mjs scripts/fuzz.ts --target NAME --seed SEED`.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fuzz } from './harness.ts';
import { makeTargets } from './targets.ts';

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'kintsugi-fuzz-')); // in memory where possible: a file per input
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const targets = await makeTargets(dir);
/** Per target; file-based loaders write a file per input, so they get fewer. */
const RUNS: Record<string, number> = {
  safetensors: 3000,
  png: 3000,
  idx: 3000,
  npy: 3000,
  checkpoint: 1500,
  measurements: 1500,
  'measurement-npy': 1000,
  'masked-folder': 500,
  'diffem-state': 1000,
  'bootstrap-manifest': 300,
};

describe('fuzzed parsers: never a crash, a hang or an outsized allocation; always a typed error naming the file', () => {
  for (const [i, target] of targets.entries())
    it(`${target.name} (${RUNS[target.name]} inputs)`, async () => {
      const report = await fuzz(target, { runs: RUNS[target.name]!, seed: 19 + i }, i);
      expect(report.inputs).toBe(RUNS[target.name]);
      // Both outcomes occur: the generators reach the success path, not only the first check.
      expect(report.errors.size).toBeGreaterThan(0);
    });
});
