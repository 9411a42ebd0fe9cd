// Conditional sampling from a trained head given y, and the paper's metrics. The sampler is ancestral
// (DDPM) on the OU process: on a grid T = t_N > ... > t_1 = t0 it predicts x̂_0 = (x_t − σ_t ε̂)/α_t and
// draws x_s from q(x_s | x_t, x̂_0), the Gaussian bridge of the forward process; the last step returns
// x̂_0 at t0. With the exact score it samples the exact posterior as the grid is refined (the tests
// check this on a Gaussian model, where the posterior is known in closed form).
import { seededNormals } from '../metrics/normals.ts';
import { alphaOf, sigmaOf, type TransferModel } from './model.ts';

export interface SampleOptions {
  /** Head to sample from (default 0). */
  head?: number;
  /** Posterior samples per condition (default 1). */
  samples?: number;
  /** Sampler steps (default 100). */
  steps?: number;
  seed?: bigint | number;
  /** Rows of y per head evaluation (default 256): bounds the memory of one pass. */
  chunk?: number;
}

/** The time grid: geometric from tMax down to t0 (fine where σ_t changes fastest), `steps` + 1 points. */
export function timeGrid(model: TransferModel, steps: number): number[] {
  const { t0, tMax } = model.config;
  return Array.from({ length: steps + 1 }, (_, i) => tMax * (t0 / tMax) ** (i / steps));
}

/**
 * `samples` posterior draws for each of the n conditions y [n, yDim]: [n, samples, xDim], row-major.
 * The draws come from Philox streams keyed by (seed, sampler step), the same whatever `chunk` is.
 */
export function sampleConditional(model: TransferModel, y: Float32Array, n: number, options: SampleOptions = {}): Float32Array {
  const c = model.config;
  const head = options.head ?? 0;
  const S = options.samples ?? 1;
  if (!Number.isInteger(S) || S < 1) throw new RangeError(`sample: samples must be a positive integer, got ${S}`);
  if (y.length !== n * c.yDim) throw new RangeError(`sample: y has ${y.length} values, expected n * yDim = ${n * c.yDim}`);
  if (!model.heads[head]) throw new RangeError(`sample: no head ${head} (the model has ${model.heads.length})`);
  const rows = n * S;
  const w = model.encode(y, n); // h(y) once per condition, not once per step
  const wRows = new Float32Array(rows * c.repDim);
  for (let r = 0; r < rows; r++) wRows.set(w.subarray(Math.floor(r / S) * c.repDim, (Math.floor(r / S) + 1) * c.repDim), r * c.repDim);
  const chunk = options.chunk ?? 256;
  const predict = (x: Float32Array, t: number): Float32Array => {
    const eps = new Float32Array(rows * c.xDim);
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const m = Math.min(chunk, rows - r0);
      const e = model.predictNoise(
        head,
        x.subarray(r0 * c.xDim, (r0 + m) * c.xDim),
        wRows.subarray(r0 * c.repDim, (r0 + m) * c.repDim),
        new Float64Array(m).fill(t),
        m,
      );
      eps.set(e, r0 * c.xDim);
    }
    return eps;
  };
  return ancestralSample(predict, rows, c.xDim, timeGrid(model, options.steps ?? 100), BigInt(options.seed ?? 0));
}

/**
 * The ancestral sampler on the OU process for any noise predictor ε̂(x_t, t) of `rows` rows of d values,
 * on a decreasing time grid; returns x̂_0 at the grid's last time.
 */
export function ancestralSample(
  predict: (x: Float32Array, t: number) => Float32Array,
  rows: number,
  d: number,
  grid: number[],
  seed: bigint,
): Float32Array {
  const steps = grid.length - 1;
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`sample: steps must be a positive integer, got ${steps}`);
  const x = Float32Array.from(seededNormals(rows * d, seed, 0n));
  for (let i = 0; i < steps; i++) {
    const t = grid[i]!;
    const s = grid[i + 1]!;
    const eps = predict(x, t);
    const at = alphaOf(t);
    const st = sigmaOf(t);
    if (i === steps - 1) {
      for (let k = 0; k < rows * d; k++) x[k] = (x[k]! - st * eps[k]!) / at;
      break;
    }
    // q(x_s | x_t, x0): with ᾱ = α², a = α_t/α_s, β = 1 − a², mean = (α_s β/σ_t²) x0 + (a σ_s²/σ_t²) x_t, var = β σ_s²/σ_t².
    const as = alphaOf(s);
    const ss = sigmaOf(s);
    const a = at / as;
    const beta = 1 - a * a;
    const c0 = (as * beta) / (st * st);
    const ct = (a * ss * ss) / (st * st);
    const sd = Math.sqrt((beta * ss * ss) / (st * st));
    const z = seededNormals(rows * d, seed, BigInt(i + 1));
    for (let k = 0; k < rows * d; k++) {
      const x0 = (x[k]! - st * eps[k]!) / at;
      x[k] = c0 * x0 + ct * x[k]! + sd * z[k]!;
    }
  }
  return x;
}

/** The mean of each condition's samples: [n, xDim] from [n, samples, xDim]. */
export function posteriorMean(samples: Float32Array, n: number, S: number, d: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let r = 0; r < n; r++) for (let s = 0; s < S; s++) for (let i = 0; i < d; i++) out[r * d + i]! += samples[(r * S + s) * d + i]! / S;
  return out;
}

/**
 * Mean over conditions of the squared error summed over coordinates, ‖a_r − b_r‖², averaged over r
 * (with `perCoordinate`, divided by d as well: the per-pixel MSE of the MNIST table).
 */
export function meanSquaredError(a: ArrayLike<number>, b: ArrayLike<number>, n: number, d: number, perCoordinate = false): number {
  if (a.length !== n * d || b.length !== n * d)
    throw new RangeError(`mse: expected two arrays of n * d = ${n * d} values, got ${a.length} and ${b.length}`);
  let s = 0;
  for (let k = 0; k < n * d; k++) s += (a[k]! - b[k]!) ** 2;
  return perCoordinate ? s / (n * d) : s / n;
}

/** MSE of each posterior sample against its ground truth, averaged over samples: [n, S, d] vs [n, d]. */
export function sampleMse(samples: Float32Array, truth: ArrayLike<number>, n: number, S: number, d: number, perCoordinate = true): number {
  let s = 0;
  for (let r = 0; r < n; r++)
    for (let j = 0; j < S; j++) for (let i = 0; i < d; i++) s += (samples[(r * S + j) * d + i]! - truth[r * d + i]!) ** 2;
  return perCoordinate ? s / (n * S * d) : s / (n * S);
}
