// The identities of the bootstrap views on the CPU: A x̂_agg = f_lr, overlap weights summing to one,
// H U = 0, A H = 0, patches put back in place give the image back, and the errors of bad arguments.
import { describe, expect, it } from 'vitest';
import { tensor, type Tensor } from '../../lib/index.ts';
import {
  aggregate,
  avgPool,
  concatChannels,
  extractPatches,
  highPass,
  overlapAdd,
  patchCount,
  patchOffsets,
  upsampleNearest,
} from '../../lib/bootstrap/views.ts';
import { maxAbs, testValues } from '../helpers.ts';

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const values = (shape: number[], seed: number) => tensor(testValues(numel(shape), seed), shape, { device: 'cpu' });
const read = async (t: Tensor) => {
  const v = await t.toArray();
  t.dispose();
  return v;
};
const maxOf = (v: ArrayLike<number>) => Array.from(v).reduce((m, x) => Math.max(m, Math.abs(x)), 0);

describe('bootstrap views: identities', () => {
  for (const [r, P, S, window] of [
    [2, 8, 4, 'hann'],
    [4, 8, 4, 'triangle'],
    [4, 16, 8, 'uniform'],
    [2, 6, 2, 'hann'],
  ] as const) {
    it(`A_lr x̂_agg = f_lr to float rounding (r ${r}, patches ${P}/${S}, ${window})`, async () => {
      const shape = [2, 3, 16, 16] as const;
      const J = patchCount(16, 16, P, S);
      const fLr = values([2, 3, 16 / r, 16 / r], 901);
      const fPatch = values([2 * J, 3, P, P], 902);
      const agg = aggregate({ shape, lowres: { estimate: fLr, factor: r }, patch: { estimate: fPatch, stride: S, window } });
      const up = upsampleNearest(fLr, r);
      const [pooled, want] = await Promise.all([read(avgPool(agg, r)), read(fLr)]);
      // |values| <= 2 and r² + 1 float roundings per cell: within a few ulps of 2.
      expect(maxAbs(pooled, want)).toBeLessThan(2e-6);
      // The detail is really there: the aggregate is not just U f_lr.
      expect(maxAbs(await read(agg), await read(up))).toBeGreaterThan(0.1);
      fPatch.dispose();
    });
  }

  for (const window of ['uniform', 'triangle', 'hann'] as const) {
    for (const [h, w, P, S] of [
      [16, 16, 8, 4],
      [7, 9, 3, 2],
      [10, 10, 4, 3],
      [16, 24, 8, 8],
    ] as const) {
      it(`overlap weights sum to one per pixel and P_jᵀ W_j P_j x = x (${window}, ${h}x${w}, ${P}/${S})`, async () => {
        const J = patchCount(h, w, P, S);
        const ones = tensor(new Float32Array(2 * J * P * P).fill(1), [2 * J, 1, P, P], { device: 'cpu' });
        const sums = await read(overlapAdd(ones, [2, 1, h, w], { stride: S, window }));
        ones.dispose();
        expect(maxAbs(sums, new Float32Array(sums.length).fill(1))).toBeLessThan(3e-7);
        const x = values([2, 2, h, w], 903);
        const back = await read(overlapAdd(extractPatches(x, { size: P, stride: S }), [2, 2, h, w], { stride: S, window }));
        expect(maxAbs(back, await read(x))).toBeLessThan(1e-6);
      });
    }
  }

  for (const r of [2, 4]) {
    it(`H U = 0 and A H = 0 (r ${r}), and x = U A x + H x`, async () => {
      const y = values([2, 3, 4, 5], 904);
      const hu = await read(highPass(upsampleNearest(y, r), r));
      // r² equal values summed in float: a few ulps of |y| <= 2.
      expect(maxOf(hu)).toBeLessThan(1e-6);
      const x = values([2, 3, 4 * r, 5 * r], 905);
      const hx = highPass(x, r);
      expect(maxOf(await read(avgPool(hx, r)))).toBeLessThan(1e-6);
      const sum = upsampleNearest(avgPool(x, r), r).add(hx);
      expect(maxAbs(await read(sum), await read(x))).toBeLessThan(1e-6);
    });
  }

  it('patches come in grid order, sample-major, with position channels on [-1, 1]', async () => {
    const h = 6,
      w = 8,
      P = 4,
      S = 2;
    const x = values([2, 1, h, w], 906);
    const xs = await x.toArray();
    const offsets = patchOffsets(h, w, P, S);
    expect(offsets).toEqual([
      [0, 0],
      [0, 2],
      [0, 4],
      [2, 0],
      [2, 2],
      [2, 4],
    ]);
    const p = await read(extractPatches(x, { size: P, stride: S, positions: true }));
    const J = offsets.length;
    for (const b of [0, 1])
      for (const [j, [oy, ox]] of offsets.entries()) {
        const base = (b * J + j) * 3 * P * P;
        expect(p[base + 1 * P + 2]).toBe(xs[(b * h + oy + 1) * w + ox + 2]);
        expect(p[base + P * P + 3 * P]).toBeCloseTo((2 * (oy + 3)) / (h - 1) - 1, 6); // row channel
        expect(p[base + 2 * P * P + 3]).toBeCloseTo((2 * (ox + 3)) / (w - 1) - 1, 6); // column channel
      }
  });

  it('concatChannels stacks along channels', async () => {
    const a = values([2, 1, 3, 3], 907);
    const b = values([2, 2, 3, 3], 908);
    const [av, bv, c] = await Promise.all([a.toArray(), b.toArray(), read(concatChannels(a, b))]);
    expect(Array.from(c.subarray(27, 36))).toEqual(Array.from(av.subarray(9, 18)));
    expect(Array.from(c.subarray(36, 54))).toEqual(Array.from(bv.subarray(18, 36)));
  });
});

describe('bootstrap views: bad arguments', () => {
  it('name the argument, the expected and the actual value', () => {
    const x = values([1, 1, 12, 12], 909);
    expect(() => avgPool(x, 5)).toThrow(/multiples of r = 5, got 12x12/);
    expect(() => extractPatches(x, { size: 8, stride: 3 })).toThrow(/multiples of the stride 3/);
    expect(() => extractPatches(x, { size: 4, stride: 6 })).toThrow(/stride must be an integer in \[1, size = 4\].*got 6/);
    expect(() => extractPatches(x, { size: 16, stride: 4 })).toThrow(/patch size must be an integer in \[1, 12\], got 16/);
    const fLr = values([1, 1, 4, 4], 910);
    expect(() => aggregate({ shape: [1, 1, 12, 12], lowres: { estimate: fLr, factor: 2 } })).toThrow(
      /residual_aggregate: fLr must have shape \[1,1,6,6\], got \[1,1,4,4\]/,
    );
    const patches = values([3, 1, 4, 4], 911);
    expect(() => overlapAdd(patches, [1, 1, 12, 12], { stride: 4 })).toThrow(
      /patch_overlap_add: patches must have shape \[9,1,4,4\], got \[3,1,4,4\]/,
    );
    expect(() => aggregate({ shape: [1, 1, 12, 12] })).toThrow(/needs a lowres or a patch view/);
    const f0 = values([1, 1, 12, 12], 912);
    expect(() =>
      aggregate({ shape: [1, 1, 12, 12], lowres: { estimate: values([1, 1, 6, 6], 913), factor: 2 }, f0: values([1, 2, 12, 12], 914) }),
    ).toThrow(/f0 must have shape \[1,1,12,12\], got \[1,2,12,12\]/);
    f0.dispose();
  });
});
