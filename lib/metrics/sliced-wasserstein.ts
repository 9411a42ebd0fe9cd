// The sliced 2-Wasserstein distance between two sets of samples (Rabin et al. 2011; Bonneel et al.
// 2015): project both sets onto random unit directions, where the 1-D Wasserstein distance is exact
// (a comparison of sorted values), and average over directions:
//
//   SWD = sqrt( mean over L directions u of W2^2(u . A, u . B) ),
//
// with W2^2 between the two empirical 1-D distributions = integral over t in (0, 1) of
// (F_A^-1(t) - F_B^-1(t))^2, computed exactly for sets of any sizes by walking both sorted lists. The
// directions are normalised Gaussian vectors drawn from Philox with the given seed (default 128
// directions, seed 0), so the value is reproducible everywhere. Units are those of the samples (for
// images in [-1, 1], pixel values); with a finite number of directions it is a Monte-Carlo estimate.
import { checkInteger, hostBatch, type SampleBatch } from './batch.ts';
import { seededNormals } from './normals.ts';

export interface SlicedWassersteinOptions {
  /** Random directions (default 128). */
  projections?: number;
  /** Seed of the directions (default 0). */
  seed?: number;
}

/** W2^2 between the empirical distributions of sorted values `a` and `b` (equal weights within each). */
export function wasserstein2Sorted1d(a: Float64Array, b: Float64Array): number {
  const [n, m] = [a.length, b.length];
  if (n === m) {
    let s = 0;
    for (let i = 0; i < n; i++) s += (a[i]! - b[i]!) ** 2;
    return s / n;
  }
  // The quantile functions are step functions with steps at i/n and j/m: integrate piece by piece.
  let [i, j, t, s] = [0, 0, 0, 0];
  while (i < n && j < m) {
    const next = Math.min((i + 1) / n, (j + 1) / m);
    s += (next - t) * (a[i]! - b[j]!) ** 2;
    t = next;
    if ((i + 1) / n <= next) i++;
    if ((j + 1) / m <= next) j++;
  }
  return s;
}

/** The sliced 2-Wasserstein distance between sample sets `a` [N, ...] and `b` [M, ...] (each sample flattened). */
export async function slicedWasserstein(a: SampleBatch, b: SampleBatch, options: SlicedWassersteinOptions = {}): Promise<number> {
  const projections = checkInteger(options.projections ?? 128, 'options.projections', 1, 2 ** 32);
  const seed = checkInteger(options.seed ?? 0, 'options.seed', 0);
  const [x, y] = [await hostBatch(a, 'a'), await hostBatch(b, 'b')];
  if (x.size !== y.size)
    throw new RangeError(
      `b: expected samples of ${x.size} values (as a, shape ${JSON.stringify(x.shape)}), got shape ${JSON.stringify(y.shape)}`,
    );
  const d = x.size;
  const [pa, pb] = [new Float64Array(x.n), new Float64Array(y.n)];
  let total = 0;
  for (let l = 0; l < projections; l++) {
    // Direction l from its own Philox stream ("SW" in the high word), drawn when needed.
    const u = seededNormals(d, BigInt(seed), (0x5357n << 32n) + BigInt(l));
    let norm = 0;
    for (let k = 0; k < d; k++) norm += u[k]! * u[k]!;
    norm = Math.sqrt(norm);
    for (const [set, out] of [
      [x, pa],
      [y, pb],
    ] as const) {
      for (let i = 0; i < set.n; i++) {
        let acc = 0;
        const base = i * d;
        for (let k = 0; k < d; k++) acc += set.data[base + k]! * u[k]!;
        out[i] = acc / norm;
      }
      out.sort();
    }
    total += wasserstein2Sorted1d(pa, pb);
  }
  return Math.sqrt(total / projections);
}
