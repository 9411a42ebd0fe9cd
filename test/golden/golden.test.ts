// Runs the golden table: every op on the CPU against its independent reference, and on CUDA against
// the CPU backend (skipped, with the reason in the suite's name, where there is no GPU). Each output
// carries guard bytes that must come back untouched; NaN fails.
import { afterAll, describe, expect, it } from 'vitest';
import { native } from '../../lib/native.ts';
import { cudaSkipReason, expectGpu, hasCuda, maxAbs, nmse } from '../helpers.ts';
import { goldenTable, type GoldenCase } from './table.ts';

const report: { op: string; device: string; shape: string; nmse: number; maxAbs: number; bound: number }[] = [];

async function runCase(c: GoldenCase, device: string): Promise<Float32Array> {
  const inputs = c.inputs(c.shape);
  const shapes = c.inputShapes?.(c.shape);
  const handles = inputs.map((data, i) => {
    const t = native.empty(device, shapes?.[i] ?? c.shape);
    native.write(t, data);
    return t;
  });
  const out = native.empty(device, c.outShape?.(c.shape) ?? c.shape, true);
  try {
    c.run(handles, out);
    const [values, guardIntact] = await Promise.all([native.read(out), native.checkGuard(out)]);
    expect(guardIntact, `${c.op} wrote past the end of its output on ${device}`).toBe(true);
    return values;
  } finally {
    for (const h of [...handles, out]) h.dispose();
  }
}

function check(c: GoldenCase, device: string, actual: Float32Array, expected: ArrayLike<number>) {
  const e = nmse(actual, expected);
  const m = maxAbs(actual, expected);
  report.push({ op: c.op, device, shape: JSON.stringify(c.shape), nmse: e, maxAbs: m, bound: c.nmse });
  expect(actual.some(Number.isNaN), 'NaN in output').toBe(false);
  expect(e).toBeLessThanOrEqual(c.nmse);
}

const name = (c: GoldenCase) => `${c.op} ${JSON.stringify(c.shape)}`;

describe('golden: cpu vs double-precision reference', () => {
  for (const c of goldenTable) {
    it(name(c), async () => {
      const actual = await runCase(c, 'cpu');
      check(c, 'cpu', actual, await c.reference(c.inputs(c.shape), c.shape));
    });
  }
});

describe('golden: a GPU is present where one is expected', () => {
  it.runIf(expectGpu)('KINTSUGI_EXPECT_GPU=1 and CUDA is usable', () => {
    expect(hasCuda, cudaSkipReason).toBe(true);
  });
});

describe.skipIf(!hasCuda)(`golden: cuda:0 vs cpu ${cudaSkipReason}`, () => {
  for (const c of goldenTable) {
    it(name(c), async () => {
      const [gpu, cpu] = await Promise.all([runCase(c, 'cuda:0'), runCase(c, 'cpu')]);
      check(c, 'cuda:0', gpu, cpu);
    });
  }
});

afterAll(() => {
  const rows = report.map((r) => ({ ...r, nmse: r.nmse.toExponential(2), maxAbs: r.maxAbs.toExponential(2) }));
  console.log('golden results (NMSE bound per op):');
  console.table(rows);
  if (!hasCuda) console.log(`golden: CUDA cases ${cudaSkipReason}`);
});
