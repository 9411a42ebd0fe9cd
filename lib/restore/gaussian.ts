// An exact prior for tests and for the moment-error table: x0 ~ N(μ, Σ) with Σ dense (small d). Its
// denoiser is linear, x̂0(x_t) = μ + M_t (x_t − √ᾱ μ) with M_t = √ᾱ Σ (ᾱ Σ + (1 − ᾱ) I)⁻¹, symmetric, so
// Jᵀu = M_t u; M_t comes from one eigendecomposition of Σ, in double on the host. With a linear
// measurement y = A x0 + σ0 z the posterior is Gaussian too (gaussianPosterior), which is what the
// samplers are checked against.
import { cholesky, cholSolve, symmetricEigen } from '../metrics/linalg.ts';
import type { GaussianPrior } from '../diffem/gaussian-prior.ts';
import type { Degradation } from '../corruption/operator.ts';
import { NoiseSchedule } from '../schedule.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { resolveDevice } from '../device.ts';
import { alphaBarAt, type Denoised, type PriorDenoiser } from './denoiser.ts';

export interface DenseGaussian {
  /** μ [d] */
  mean: Float64Array;
  /** Σ [d × d], row-major, symmetric positive semi-definite. */
  cov: Float64Array;
}

/** Jacobi's eigendecomposition is O(d³) per sweep: beyond this the exact prior is not the tool. */
const MAX_DIM = 512;

/** Σ = W Wᵀ + diag(D) of DiffEM's round-0 prior, dense. */
export function denseGaussian(prior: GaussianPrior): DenseGaussian {
  const { dim: d, rank: r, factor, diag } = prior;
  if (d > MAX_DIM) throw new RangeError(`denseGaussian: the prior has ${d} dimensions; dense covariances are for d <= ${MAX_DIM}`);
  const cov = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j <= i; j++) {
      let s = i === j ? diag[i]! : 0;
      for (let a = 0; a < r; a++) s += factor[i * r + a]! * factor[j * r + a]!;
      cov[i * d + j] = cov[j * d + i] = s;
    }
  return { mean: Float64Array.from(prior.mean), cov };
}

/** The exact denoiser of N(μ, Σ) for signals of shape `signalShape` (d = C·H·W values). */
export function gaussianDenoiser(
  prior: DenseGaussian,
  schedule: NoiseSchedule,
  signalShape: readonly number[],
  options: { device?: string } = {},
): PriorDenoiser {
  const d = signalShape.reduce((a, b) => a * b, 1);
  if (prior.mean.length !== d || prior.cov.length !== d * d)
    throw new RangeError(
      `gaussianDenoiser: signals of shape [${signalShape.join(', ')}] need a mean of ${d} and a covariance of ${d * d} values, got ${prior.mean.length} and ${prior.cov.length}`,
    );
  if (d > MAX_DIM) throw new RangeError(`gaussianDenoiser: d = ${d}; the exact prior is for d <= ${MAX_DIM}`);
  const device = resolveDevice(options.device);
  const { values, vectors } = symmetricEigen(prior.cov, d);
  if (values.some((v) => v < -1e-9 * Math.max(1, ...values)))
    throw new RangeError('gaussianDenoiser: the covariance is not positive semi-definite');
  const cache = new Map<number, Float64Array>();
  const gain = (t: number): Float64Array => {
    let m = cache.get(t);
    if (m) return m;
    const ab = alphaBarAt(schedule, t);
    const w = Array.from(values, (l) => (Math.sqrt(ab) * Math.max(l, 0)) / (ab * Math.max(l, 0) + 1 - ab));
    m = new Float64Array(d * d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += vectors[i * d + k]! * w[k]! * vectors[j * d + k]!;
        m[i * d + j] = m[j * d + i] = s;
      }
    cache.set(t, m);
    return m;
  };
  const apply = (m: Float64Array, v: Float32Array, shift: Float64Array | null): Float32Array => {
    const n = v.length / d;
    const out = new Float32Array(v.length);
    const row = new Float64Array(d);
    for (let b = 0; b < n; b++) {
      for (let j = 0; j < d; j++) row[j] = v[b * d + j]! - (shift ? shift[j]! : 0);
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += m[i * d + j]! * row[j]!;
        out[b * d + i] = s;
      }
    }
    return out;
  };
  return {
    device,
    schedule,
    signalShape: Object.freeze([...signalShape]),
    async denoise(x, t) {
      const m = gain(t);
      const ab = schedule.alphaBars[t]!;
      const shift = prior.mean.map((u) => Math.sqrt(ab) * u);
      const est = apply(m, await x.toArray(), shift);
      for (let b = 0; b < est.length / d; b++) for (let j = 0; j < d; j++) est[b * d + j]! += prior.mean[j]!;
      const x0 = tensor(est, x.shape, { device: x.device });
      const dispose = () => x0.dispose();
      const result: Denoised = {
        x0,
        vjp: async (u: Tensor) => tensor(apply(m, await u.toArray(), null), u.shape, { device: u.device }),
        dispose,
        [Symbol.dispose]: dispose,
      };
      return result;
    },
  };
}

/**
 * A as a dense matrix for row `index` of `op`: the rows of the measurement coordinates that carry data
 * (measurementMask 1), [m × d], and which coordinates those are.
 */
export async function denseOperator(op: Degradation, index = 0): Promise<{ matrix: Float64Array; rows: number[]; d: number }> {
  const d = op.signalShape.reduce((a, b) => a * b, 1);
  const md = op.measurementShape.reduce((a, b) => a * b, 1);
  if (d > MAX_DIM) throw new RangeError(`denseOperator: d = ${d}; dense operators are for d <= ${MAX_DIM}`);
  const basis = new Float32Array(d * d);
  for (let j = 0; j < d; j++) basis[j * d + j] = 1;
  const many = op.select(new Array<number>(d).fill(index));
  const x = tensor(basis, [d, ...op.signalShape], { device: op.device });
  const y = many.apply(x);
  const cols = await y.toArray(); // row j: A e_j
  const maskT = many.measurementMask();
  const mask = maskT ? (await maskT.toArray()).subarray(0, md) : new Float32Array(md).fill(1);
  for (const t of [x, y, maskT]) t?.dispose();
  many.dispose();
  const rows = [...mask.keys()].filter((i) => mask[i] !== 0);
  const matrix = new Float64Array(rows.length * d);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) matrix[i * d + j] = cols[j * md + r]!;
  });
  return { matrix, rows, d };
}

/**
 * The exact posterior N(m, P) of x0 given y = A x0 + σ0 z (A [m × d] dense, y [m]):
 * m = μ + Σ Aᵀ S⁻¹ (y − A μ), P = Σ − Σ Aᵀ S⁻¹ A Σ, S = σ0² I + A Σ Aᵀ (Cholesky; σ0 = 0 needs A Σ Aᵀ
 * nonsingular).
 */
export function gaussianPosterior(prior: DenseGaussian, matrix: Float64Array, y: ArrayLike<number>, sigma0: number): DenseGaussian {
  const d = prior.mean.length;
  const m = matrix.length / d;
  if (y.length !== m) throw new RangeError(`gaussianPosterior: y has ${y.length} values, A has ${m} rows`);
  const sat = new Float64Array(d * m); // Σ Aᵀ
  for (let i = 0; i < d; i++)
    for (let r = 0; r < m; r++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += prior.cov[i * d + j]! * matrix[r * d + j]!;
      sat[i * m + r] = s;
    }
  const S = new Float64Array(m * m);
  for (let r = 0; r < m; r++)
    for (let q = 0; q < m; q++) {
      let s = r === q ? sigma0 * sigma0 : 0;
      for (let j = 0; j < d; j++) s += matrix[r * d + j]! * sat[j * m + q]!;
      S[r * m + q] = s;
    }
  const L = cholesky(S, m);
  const resid = new Float64Array(m);
  for (let r = 0; r < m; r++) {
    let s = y[r]!;
    for (let j = 0; j < d; j++) s -= matrix[r * d + j]! * prior.mean[j]!;
    resid[r] = s;
  }
  cholSolve(L, m, resid);
  const mean = Float64Array.from(prior.mean);
  for (let i = 0; i < d; i++) for (let r = 0; r < m; r++) mean[i]! += sat[i * m + r]! * resid[r]!;
  // P = Σ − (Σ Aᵀ) S⁻¹ (Σ Aᵀ)ᵀ: solve S X = (Σ Aᵀ)ᵀ column by column.
  const cov = Float64Array.from(prior.cov);
  const col = new Float64Array(m);
  for (let j = 0; j < d; j++) {
    for (let r = 0; r < m; r++) col[r] = sat[j * m + r]!;
    cholSolve(L, m, col);
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let r = 0; r < m; r++) s += sat[i * m + r]! * col[r]!;
      cov[i * d + j]! -= s;
    }
  }
  return { mean, cov };
}
