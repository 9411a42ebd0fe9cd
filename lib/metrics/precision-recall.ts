// Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019) between generated samples and
// reference data in a feature space. Each set's manifold is the union of balls around its points,
// each ball's radius the distance to the point's k-th nearest neighbour in its own set (itself not
// counted). Then
//
//   precision = the fraction of samples inside the reference manifold (are the samples realistic?),
//   recall    = the fraction of reference points inside the samples' manifold (is the data covered?).
//
// Distances come from pairwise.ts (the library's GEMM, on the CPU or a GPU), one block of rows at a time,
// so memory stays O(rows x N) and the k-NN radii need no N x N matrix.
import { checkInteger, hostBatch, type SampleBatch } from './batch.ts';
import { forEachDistanceBlock } from './pairwise.ts';

export interface PrecisionRecallOptions {
  /** The neighbour whose distance is each ball's radius (default 3, as in the paper). */
  k?: number;
  /** Where the distances are computed (default: defaultDevice()). */
  device?: string;
}

export interface PrecisionRecall {
  precision: number;
  recall: number;
}

/** The squared distance of every point of x [n, d] to its k-th nearest other point of x. */
async function knnRadii2(x: Float64Array, n: number, d: number, k: number, device: string | undefined): Promise<Float64Array> {
  const radii = new Float64Array(n);
  const best = new Float64Array(k); // the k smallest so far, ascending
  await forEachDistanceBlock(x, n, x, n, d, device, (first, rows, d2) => {
    for (let r = 0; r < rows; r++) {
      const i = first + r;
      best.fill(Infinity);
      for (let j = 0; j < n; j++) {
        const s = d2[r * n + j]!;
        if (j === i || s >= best[k - 1]!) continue;
        let p = k - 1;
        while (p > 0 && best[p - 1]! > s) {
          best[p] = best[p - 1]!;
          p--;
        }
        best[p] = s;
      }
      radii[i] = best[k - 1]!;
    }
  });
  return radii;
}

/** The fraction of the points of q [nq, d] inside the union of balls with centres x [nx, d] and squared radii r2. */
async function coverage(
  q: Float64Array,
  nq: number,
  x: Float64Array,
  r2: Float64Array,
  nx: number,
  d: number,
  device: string | undefined,
): Promise<number> {
  let inside = 0;
  await forEachDistanceBlock(q, nq, x, nx, d, device, (_first, rows, d2) => {
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < nx; j++)
        if (d2[r * nx + j]! <= r2[j]!) {
          inside++;
          break;
        }
  });
  return inside / nq;
}

/** Precision and recall of `samples` [N, d] against `reference` [M, d] (features; each sample flattened). */
export async function precisionRecall(
  samples: SampleBatch,
  reference: SampleBatch,
  options: PrecisionRecallOptions = {},
): Promise<PrecisionRecall> {
  const k = checkInteger(options.k ?? 3, 'options.k', 1);
  const [s, r] = [await hostBatch(samples, 'samples'), await hostBatch(reference, 'reference')];
  if (s.size !== r.size)
    throw new RangeError(`reference: expected vectors of ${s.size} values (as samples), got shape ${JSON.stringify(r.shape)}`);
  for (const [name, b] of [
    ['samples', s],
    ['reference', r],
  ] as const)
    if (b.n <= k) throw new RangeError(`${name}: k = ${k} needs more than ${k} points, got ${b.n}`);
  const d = s.size;
  const [xs, xr] = [Float64Array.from(s.data), Float64Array.from(r.data)];
  const { device } = options;
  const precision = await coverage(xs, s.n, xr, await knnRadii2(xr, r.n, d, k, device), r.n, d, device);
  const recall = await coverage(xr, r.n, xs, await knnRadii2(xs, s.n, d, k, device), s.n, d, device);
  return { precision, recall };
}
