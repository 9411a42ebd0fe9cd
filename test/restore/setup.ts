// A small Gaussian world shared by the restore tests: signals [1, 4, 4] (d = 16) from N(μ, Σ) with
// spatially correlated Σ, its exact denoiser, and the closed-form posterior to compare samplers with.
import { NoiseSchedule } from '../../lib/schedule.ts';
import { gaussianDenoiser, type DenseGaussian } from '../../lib/restore/gaussian.ts';

export const SHAPE = [1, 4, 4] as const;
export const D = 16;
export const schedule = new NoiseSchedule({ kind: 'linear' });

/** Σ_ij = 0.25 exp(−|p_i − p_j| / 1.5) + 0.01 δ_ij over pixel positions, μ a gentle ramp. */
export function testPrior(): DenseGaussian {
  const mean = new Float64Array(D),
    cov = new Float64Array(D * D);
  for (let i = 0; i < D; i++) {
    mean[i] = (0.2 * ((i % 4) - 1.5)) / 1.5;
    for (let j = 0; j < D; j++) {
      const dist = Math.hypot((i % 4) - (j % 4), Math.floor(i / 4) - Math.floor(j / 4));
      cov[i * D + j] = 0.25 * Math.exp(-dist / 1.5) + (i === j ? 0.01 : 0);
    }
  }
  return { mean, cov };
}

export const denoiser = (device = 'cpu') => gaussianDenoiser(testPrior(), schedule, SHAPE, { device });

/** Per-coordinate sample mean and the full sample covariance of n vectors of d values (double). */
export function sampleMoments(x: Float32Array, n: number, d = D): { mean: Float64Array; cov: Float64Array } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++)
      for (let b = 0; b < d; b++) cov[a * d + b]! += ((x[i * d + a]! - mean[a]!) * (x[i * d + b]! - mean[b]!)) / (n - 1);
  return { mean, cov };
}
