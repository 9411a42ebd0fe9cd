// Distances between sets of samples: the sliced Wasserstein distance and improved precision/recall,
// against values derived by hand (1-D shifts, quantile integrals, balls on a line) and brute force.
import { describe, expect, it } from 'vitest';
import { precisionRecall, slicedWasserstein, tensor } from '../../lib/index.ts';
import { forEachDistanceBlock } from '../../lib/metrics/pairwise.ts';
import { wasserstein2Sorted1d } from '../../lib/metrics/sliced-wasserstein.ts';

function lcg(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((hi - lo) * s) / 2 ** 32;
  });
}

describe('sliced Wasserstein distance', () => {
  it('is 0 between identical sets and reproducible for a seed', async () => {
    const x = { data: lcg(50 * 6, 1), shape: [50, 2, 3] };
    expect(await slicedWasserstein(x, x)).toBe(0);
    const y = { data: lcg(40 * 6, 2), shape: [40, 6] };
    const v = await slicedWasserstein(x, y, { seed: 3 });
    expect(v).toBeGreaterThan(0.1);
    expect(await slicedWasserstein(x, y, { seed: 3 })).toBe(v);
    expect(await slicedWasserstein(x, y, { seed: 4 })).not.toBe(v);
  });

  it('of 1-D sets shifted by c is |c|, for equal and unequal set sizes', async () => {
    // In 1-D every unit direction is +-1, and W2 between a set and its shifted copy is the shift.
    const a = lcg(30, 5);
    const c = 0.375;
    expect(await slicedWasserstein({ data: a, shape: [30, 1] }, { data: a.map((v) => v - c), shape: [30, 1] })).toBeCloseTo(c, 12);
    // {0, 1} against {0, 0, 1, 1} + c: the same distribution shifted.
    expect(
      await slicedWasserstein(
        { data: Float64Array.of(0, 1), shape: [2, 1] },
        { data: Float64Array.of(c, c, 1 + c, 1 + c), shape: [4, 1] },
        { projections: 3 },
      ),
    ).toBeCloseTo(c, 12);
  });

  it('integrates the 1-D quantile functions exactly for unequal sizes', () => {
    // {0} vs {0, 1}: half the mass moves by 1 -> W2^2 = 1/2. {0, 3} vs {0, 1, 2}: pieces
    // (0,1/3): 0; (1/3,1/2): 1; (1/2,2/3): (3-1)^2; (2/3,1): (3-2)^2 -> 1/6 + 4/6 + 1/3.
    expect(wasserstein2Sorted1d(Float64Array.of(0), Float64Array.of(0, 1))).toBeCloseTo(0.5, 15);
    expect(wasserstein2Sorted1d(Float64Array.of(0, 3), Float64Array.of(0, 1, 2))).toBeCloseTo(1 / 6 + 4 / 6 + 1 / 3, 15);
  });

  it('of a set and its copy shifted by s in d dimensions is about |s| / sqrt(d)', async () => {
    // Each projection moves the set by u . s, and E[(u . s)^2] = |s|^2 / d over uniform unit vectors u.
    const [n, d] = [20, 8];
    const x = lcg(n * d, 6);
    const s = Float64Array.from({ length: d }, (_, k) => (k % 2 ? 1 : -0.5));
    const norm = Math.sqrt(s.reduce((p, v) => p + v * v, 0));
    const v = await slicedWasserstein(
      { data: x, shape: [n, d] },
      { data: x.map((t, k) => t + s[k % d]!), shape: [n, d] },
      { projections: 4000 },
    );
    expect(Math.abs(v - norm / Math.sqrt(d)) / (norm / Math.sqrt(d))).toBeLessThan(0.03);
  });

  it('takes tensors and rejects mismatched sample sizes and bad options', async () => {
    using a = tensor(Float32Array.from(lcg(12, 7)), [3, 4]);
    expect(await slicedWasserstein(a, a)).toBe(0);
    await expect(slicedWasserstein(a, { data: new Float32Array(6), shape: [2, 3] })).rejects.toThrow(
      /b: expected samples of 4 values \(as a, shape \[3,4\]\), got shape \[2,3\]/,
    );
    await expect(slicedWasserstein(a, a, { projections: 0 })).rejects.toThrow(
      /options.projections: expected an integer in \[1, 4294967296\], got 0/,
    );
  });
});

describe('pairwise distances', () => {
  it('equal the direct double computation, delivered in consecutive blocks of whole column groups', async () => {
    const [nq, np, d] = [300, 50, 7];
    const q = lcg(nq * d, 15);
    const p = lcg(np * d, 16, -2, 2);
    const firsts: number[] = [];
    let worst = 0;
    // 128 * 50 values a block: 128 rows at a time, so blocks start at 0, 128, 256.
    await forEachDistanceBlock(
      q,
      nq,
      p,
      np,
      d,
      'cpu',
      (first, rows, d2) => {
        firsts.push(first);
        for (let r = 0; r < rows; r++)
          for (let j = 0; j < np; j++) {
            let s = 0;
            for (let k = 0; k < d; k++) s += (q[(first + r) * d + k]! - p[j * d + k]!) ** 2;
            worst = Math.max(worst, Math.abs(d2[r * np + j]! - s) / s);
          }
      },
      128 * 50,
    );
    expect(firsts).toEqual([0, 128, 256]);
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('precision and recall (Kynkäänniemi et al. 2019)', () => {
  it('are 1 for identical sets and 0 for disjoint ones', async () => {
    const x = { data: lcg(300 * 16, 8), shape: [300, 16] };
    expect(await precisionRecall(x, x)).toEqual({ precision: 1, recall: 1 });
    const far = { data: x.data.map((v) => v + 10), shape: [300, 16] };
    expect(await precisionRecall(far, x)).toEqual({ precision: 0, recall: 0 });
  });

  it('match balls on a line worked by hand', async () => {
    // Reference {0, 1, 2, 3, 4}, k = 1: every radius is 1, so 0.5 is inside and 10 is not: precision 1/2.
    // Samples {0.5, 10}, k = 1: both radii are 9.5; every reference point is within 9.5 of 0.5 or 10: recall 1.
    // Samples {0.5, 1.5, 9, 10}, k = 1: radii 1, 1, 1, 1 -> reference 0, 1, 2 covered, 3 and 4 not: recall 3/5;
    // precision: 0.5, 1.5 inside, 9, 10 outside -> 1/2.
    const ref = { data: Float64Array.of(0, 1, 2, 3, 4), shape: [5, 1] };
    expect(await precisionRecall({ data: Float64Array.of(0.5, 10), shape: [2, 1] }, ref, { k: 1 })).toEqual({ precision: 0.5, recall: 1 });
    expect(await precisionRecall({ data: Float64Array.of(0.5, 1.5, 9, 10), shape: [4, 1] }, ref, { k: 1 })).toEqual({
      precision: 0.5,
      recall: 0.6,
    });
    // k = 3 on the reference: the radius of 0 is 3, of 2 is 1 ... so 10 stays out, 0.5 in; samples {0.5, 1.5, 9, 10}
    // with k = 3 have radii 8.5, 7.5, 7.5, 8.5: all of the reference is covered.
    expect(await precisionRecall({ data: Float64Array.of(0.5, 1.5, 9, 10), shape: [4, 1] }, ref)).toEqual({ precision: 0.5, recall: 1 });
  });

  it('drop as the samples cover less of the reference (a mode dropped)', async () => {
    // Two clusters in the reference; the samples hold only the first: precision stays 1, recall halves.
    const [n, d] = [200, 4];
    const cluster = (seed: number, centre: number) => lcg(n * d, seed, -0.5, 0.5).map((v) => v + centre);
    const ref = { data: Float64Array.from([...cluster(9, 0), ...cluster(10, 20)]), shape: [2 * n, d] };
    const samples = { data: Float64Array.from(ref.data.subarray(0, n * d)), shape: [n, d] };
    const r = await precisionRecall(samples, ref);
    expect(r.precision).toBe(1);
    expect(r.recall).toBe(0.5);
  });

  it('match a brute-force double computation', async () => {
    // Two overlapping 2-D clusters of different widths, 1,000 points each.
    const n = 1000;
    const a = lcg(2 * n, 13, -1, 1);
    const b = lcg(2 * n, 14, -0.6, 1.4);
    // The third smallest squared distance to another point (k = 3), kept as a running sorted triple.
    const knn = (x: Float64Array) =>
      Float64Array.from({ length: n }, (_, i) => {
        let [m1, m2, m3] = [Infinity, Infinity, Infinity];
        for (let j = 0; j < n; j++) {
          if (j === i) continue;
          const d = (x[2 * i]! - x[2 * j]!) ** 2 + (x[2 * i + 1]! - x[2 * j + 1]!) ** 2;
          if (d < m1) [m1, m2, m3] = [d, m1, m2];
          else if (d < m2) [m2, m3] = [d, m2];
          else if (d < m3) m3 = d;
        }
        return m3;
      });
    const cover = (q: Float64Array, x: Float64Array, r2: Float64Array) => {
      let inside = 0;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++)
          if ((q[2 * i]! - x[2 * j]!) ** 2 + (q[2 * i + 1]! - x[2 * j + 1]!) ** 2 <= r2[j]!) {
            inside++;
            break;
          }
      return inside / n;
    };
    const expected = { precision: cover(a, b, knn(b)), recall: cover(b, a, knn(a)) };
    expect(expected.precision).toBeGreaterThan(0.3);
    expect(expected.precision).toBeLessThan(0.9);
    expect(await precisionRecall({ data: a, shape: [n, 2] }, { data: b, shape: [n, 2] })).toEqual(expected);
  });

  it('reject too few points for k and mismatched widths', async () => {
    const x = { data: lcg(3 * 2, 11), shape: [3, 2] };
    await expect(precisionRecall(x, { data: lcg(10 * 2, 12), shape: [10, 2] })).rejects.toThrow(
      /samples: k = 3 needs more than 3 points, got 3/,
    );
    await expect(precisionRecall(x, { data: lcg(9, 12), shape: [3, 3] }, { k: 1 })).rejects.toThrow(
      /reference: expected vectors of 2 values \(as samples\), got shape \[3,3\]/,
    );
    await expect(precisionRecall(x, x, { k: 0 })).rejects.toThrow(/options.k: expected an integer in \[1, ∞\], got 0/);
  });
});
