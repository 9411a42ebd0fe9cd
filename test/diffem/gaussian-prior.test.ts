// The round-0 Gaussian prior of DiffEM, checked against independent computations: the posterior and the
// likelihood against dense conditioning of Σ = W Wᵀ + diag(D) with an explicit Gauss-Jordan inverse,
// EM against its defining property (the likelihood never decreases), the fit against the distribution
// that generated the data, and the sampler against the dense posterior's moments.
import { describe, expect, it } from 'vitest';
import {
  expandMask,
  fitGaussianPrior,
  observationLogLikelihood,
  posteriorMean,
  posteriorSample,
  type GaussianPrior,
} from '../../lib/diffem/gaussian-prior.ts';
import { randomPatchMask } from '../../lib/corruption/mask.ts';
import { seededNormals } from '../../lib/metrics/normals.ts';

/** A prior with μ ~ N(0, 0.5²), W ~ N(0, scale²), D in [0.05, 0.15]: test input, drawn from `seed`. */
function randomPrior(d: number, r: number, seed: number, scale = 0.5): GaussianPrior {
  const g = seededNormals(d * (r + 2), BigInt(seed), 99n);
  return {
    mean: g.slice(0, d).map((v) => 0.5 * v),
    factor: g.slice(d, d + d * r).map((v) => scale * v),
    diag: g.slice(d + d * r).map((v) => 0.1 + 0.05 * Math.tanh(v)),
    rank: r,
    dim: d,
    logLikelihood: [],
  };
}

/** Σ = W Wᵀ + diag(D), dense [d × d]. */
function denseCovariance(p: GaussianPrior): Float64Array {
  const { dim: d, rank: r } = p;
  const s = new Float64Array(d * d);
  for (let a = 0; a < d; a++)
    for (let b = 0; b < d; b++) {
      let v = a === b ? p.diag[a]! : 0;
      for (let k = 0; k < r; k++) v += p.factor[a * r + k]! * p.factor[b * r + k]!;
      s[a * d + b] = v;
    }
  return s;
}

/** Inverse and log-determinant of a symmetric positive definite k×k matrix by Gauss-Jordan with partial pivoting. */
function invert(m: Float64Array, k: number): { inv: Float64Array; logDet: number } {
  const a = Float64Array.from(m);
  const inv = new Float64Array(k * k);
  for (let i = 0; i < k; i++) inv[i * k + i] = 1;
  let logDet = 0;
  for (let c = 0; c < k; c++) {
    let piv = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(a[r * k + c]!) > Math.abs(a[piv * k + c]!)) piv = r;
    for (const x of [a, inv]) for (let j = 0; j < k; j++) [x[c * k + j], x[piv * k + j]] = [x[piv * k + j]!, x[c * k + j]!];
    const p = a[c * k + c]!;
    logDet += Math.log(Math.abs(p)); // a row swap flips the sign only, and det > 0 here
    for (const x of [a, inv]) for (let j = 0; j < k; j++) x[c * k + j]! /= p;
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = a[r * k + c]!;
      for (const x of [a, inv]) for (let j = 0; j < k; j++) x[r * k + j]! -= f * x[c * k + j]!;
    }
  }
  return { inv, logDet };
}

/** p(x | y_O) and log p(y_O) for one sample by dense Gaussian conditioning: y_O ~ N(μ_O, Σ_OO + σ² I). */
function denseConditional(p: GaussianPrior, y: ArrayLike<number>, mask: ArrayLike<number>, sigma: number) {
  const d = p.dim;
  const s = denseCovariance(p);
  const o = Array.from({ length: d }, (_, j) => j).filter((j) => mask[j] === 1);
  const k = o.length;
  const c = new Float64Array(k * k);
  o.forEach((a, i) => o.forEach((b, j) => (c[i * k + j] = s[a * d + b]! + (i === j ? sigma * sigma : 0))));
  const { inv, logDet } = invert(c, k);
  const res = o.map((j) => y[j]! - p.mean[j]!);
  const w = res.map((_, i) => res.reduce((t, v, j) => t + inv[i * k + j]! * v, 0)); // C⁻¹ ρ
  const mean = p.mean.map((m, a) => m + o.reduce((t, b, i) => t + s[a * d + b]! * w[i]!, 0));
  const cov = new Float64Array(d * d);
  for (let a = 0; a < d; a++)
    for (let b = 0; b < d; b++) {
      let v = s[a * d + b]!;
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) v -= s[a * d + o[i]!]! * inv[i * k + j]! * s[o[j]! * d + b]!;
      cov[a * d + b] = v;
    }
  const logLik = -0.5 * (k * Math.log(2 * Math.PI) + logDet + res.reduce((t, v, i) => t + v * w[i]!, 0));
  return { mean, cov, logLik };
}

/** n draws x ~ N(μ, Σ) of `p` and their observations y = m ⊙ (x + σ n), masks dropping each coordinate with probability pDrop. */
function observe(p: GaussianPrior, n: number, pDrop: number, sigma: number, seed: number) {
  const { dim: d, rank: r } = p;
  const g = seededNormals(n * (r + 2 * d), BigInt(seed), 7n);
  const x = new Float64Array(n * d);
  const y = new Float64Array(n * d);
  const mask = randomPatchMask(n, [1, d], { p: pDrop, seed });
  for (let i = 0; i < n; i++) {
    const gi = i * (r + 2 * d);
    for (let j = 0; j < d; j++) {
      let v = p.mean[j]! + Math.sqrt(p.diag[j]!) * g[gi + r + j]!;
      for (let k = 0; k < r; k++) v += p.factor[j * r + k]! * g[gi + k]!;
      x[i * d + j] = v;
      if (mask[i * d + j]) y[i * d + j] = v + sigma * g[gi + r + d + j]!;
    }
  }
  return { x, y, mask };
}

// Three samples of d = 6: a partial mask, every coordinate observed, none observed (the prior itself).
const small = randomPrior(6, 2, 1);
const smallY = Float64Array.from([0.3, -9, 1.1, -0.4, -9, 0.8, 0.2, -0.5, 0.9, 1.3, -1.0, 0.1, -9, -9, -9, -9, -9, -9]);
const smallMask = Uint8Array.from([1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);

describe('Gaussian prior: conditioning', () => {
  for (const sigma of [0.3, 0]) {
    it(`posteriorMean equals dense Gaussian conditioning (σ_y = ${sigma})`, () => {
      const got = posteriorMean(small, smallY, smallMask, 3, 6, sigma);
      for (let i = 0; i < 3; i++) {
        const want = denseConditional(small, smallY.subarray(i * 6), smallMask.subarray(i * 6), sigma).mean;
        for (let j = 0; j < 6; j++) expect(Math.abs(got[i * 6 + j]! - want[j]!)).toBeLessThan(1e-12);
      }
    });

    it(`observationLogLikelihood equals the dense normal log density of y_O (σ_y = ${sigma})`, () => {
      const got = observationLogLikelihood(small, smallY, smallMask, 3, 6, sigma);
      for (let i = 0; i < 3; i++) {
        const want = denseConditional(small, smallY.subarray(i * 6), smallMask.subarray(i * 6), sigma).logLik;
        expect(Math.abs(got[i]! - want)).toBeLessThan(1e-12 * Math.max(1, Math.abs(want)));
      }
      expect(Math.abs(got[2]!)).toBe(0); // nothing observed: p(y_∅) = 1
    });
  }

  it('posteriorSample has the dense posterior mean and covariance (20 000 draws, 4.5 standard errors)', () => {
    const N = 20_000;
    const d = 6;
    const sigma = 0.3;
    const y = new Float64Array(N * d);
    const mask = new Uint8Array(N * d);
    for (let i = 0; i < N; i++) {
      y.set(smallY.subarray(0, d), i * d);
      mask.set(smallMask.subarray(0, d), i * d);
    }
    const x = posteriorSample(small, y, mask, N, d, sigma, 5, 1);
    const { mean, cov } = denseConditional(small, smallY, smallMask, sigma);
    const m = new Float64Array(d);
    for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) m[j]! += x[i * d + j]! / N;
    for (let j = 0; j < d; j++) expect(Math.abs(m[j]! - mean[j]!)).toBeLessThan(4.5 * Math.sqrt(cov[j * d + j]! / N));
    // The sample covariance about the known mean: entry (a, b) has variance (C_aa C_bb + C_ab²) / N.
    for (let a = 0; a < d; a++)
      for (let b = a; b < d; b++) {
        let s = 0;
        for (let i = 0; i < N; i++) s += (x[i * d + a]! - mean[a]!) * (x[i * d + b]! - mean[b]!);
        const se = Math.sqrt((cov[a * d + a]! * cov[b * d + b]! + cov[a * d + b]! ** 2) / N);
        expect(Math.abs(s / N - cov[a * d + b]!)).toBeLessThan(4.5 * se);
      }
  });

  it('posteriorSample keeps observed values exactly when σ_y = 0, and sample i does not depend on n', () => {
    const x = posteriorSample(small, smallY, smallMask, 3, 6, 0, 3, 2);
    for (let t = 0; t < 18; t++) if (smallMask[t]) expect(x[t]).toBe(smallY[t]);
    const first = posteriorSample(small, smallY.subarray(0, 6), smallMask.subarray(0, 6), 1, 6, 0, 3, 2);
    expect(Array.from(first)).toEqual(Array.from(x.subarray(0, 6)));
  });
});

describe('Gaussian prior: EM', () => {
  for (const sigma of [0.05, 0]) {
    it(`the log-likelihood never decreases (σ_y = ${sigma}) and the last entry is the fitted prior's`, async () => {
      const truth = randomPrior(12, 2, 2);
      const { y, mask } = observe(truth, 500, 0.4, sigma, 3);
      const seen: number[] = [];
      const fit = await fitGaussianPrior(y, mask, 500, 12, {
        rank: 2,
        iterations: 40,
        sigmaY: sigma,
        seed: 1,
        onIteration: (_, l) => seen.push(l),
      });
      const ll = fit.logLikelihood;
      expect(ll).toHaveLength(41);
      expect(seen).toEqual(ll);
      for (let k = 1; k < ll.length; k++) expect(ll[k]!).toBeGreaterThanOrEqual(ll[k - 1]! - 1e-9 * Math.abs(ll[k - 1]!));
      expect(ll[40]! - ll[0]!).toBeGreaterThan(100); // it did climb, not just stay put
      const final = observationLogLikelihood(fit, y, mask, 500, 12, sigma).reduce((s, v) => s + v, 0);
      expect(Math.abs(final - ll[40]!)).toBeLessThan(1e-9 * Math.abs(final));
    });
  }

  it('converges to a stationary point of the likelihood (central finite differences in every parameter)', async () => {
    // Monotonicity alone would also hold for an update that stops short of the M-step's maximum; a fixed
    // point with zero gradient is what makes the result a maximum-likelihood fit. EM's tail is linear
    // (about 1 % per iteration here), so after 400 iterations the gradient is ~0.02 nats per unit of a
    // parameter over n = 300 samples, where the initialisation's is ~100.
    const d = 8,
      n = 300,
      sigma = 0.1;
    const { y, mask } = observe(randomPrior(d, 2, 11), n, 0.3, sigma, 11);
    const gradient = (p: GaussianPrior) => {
      const total = (q: GaussianPrior) => observationLogLikelihood(q, y, mask, n, d, sigma).reduce((s, v) => s + v, 0);
      let worst = 0;
      for (const key of ['mean', 'factor', 'diag'] as const)
        for (let t = 0; t < p[key].length; t++) {
          const up = { ...p, [key]: Float64Array.from(p[key]) };
          const dn = { ...p, [key]: Float64Array.from(p[key]) };
          up[key][t]! += 1e-5;
          dn[key][t]! -= 1e-5;
          worst = Math.max(worst, Math.abs(total(up) - total(dn)) / 2e-5);
        }
      return worst;
    };
    const o = { rank: 2, sigmaY: sigma, seed: 1 };
    expect(gradient(await fitGaussianPrior(y, mask, n, d, { ...o, iterations: 0 }))).toBeGreaterThan(10);
    const fit = await fitGaussianPrior(y, mask, n, d, { ...o, iterations: 400 });
    expect(Math.min(...fit.diag)).toBeGreaterThan(1e-3); // no D at its floor, where the gradient need not vanish
    expect(gradient(fit)).toBeLessThan(0.1);
  });

  it('recovers the mean and covariance of the generating distribution (n = 4000, d = 24, r = 3, 40 % masked, σ_y = 0.05)', async () => {
    const d = 24,
      r = 3,
      n = 4000,
      sigma = 0.05;
    const truth = randomPrior(d, r, 4);
    const { x, y, mask } = observe(truth, n, 0.4, sigma, 5);
    const fit = await fitGaussianPrior(y, mask, n, d, { rank: r, iterations: 40, sigmaY: sigma, seed: 2 });
    const sigmaTrue = denseCovariance(truth);
    // Mean: coordinate j is seen n_j ≈ 0.6 n times with variance Σ_jj + σ_y², so its standard error is
    // √((Σ_jj + σ_y²) / n_j); 4 standard errors over 24 coordinates fails by chance with p ≈ 1.5e-3.
    for (let j = 0; j < d; j++) {
      let nj = 0;
      for (let i = 0; i < n; i++) nj += mask[i * d + j]!;
      expect(Math.abs(fit.mean[j]! - truth.mean[j]!)).toBeLessThan(4 * Math.sqrt((sigmaTrue[j * d + j]! + sigma * sigma) / nj));
    }
    // Covariance: the yardstick is the sampling error of the oracle that sees the same n clean, complete
    // x: its sample covariance misses Σ by ‖·‖_F ≈ √(((tr Σ)² + ‖Σ‖²_F) / n), here about 4 % of ‖Σ‖_F. The
    // fit sees 60 % of the coordinates (36 % of the pairs) with noise, which costs up to 1/0.6 to 1/0.36 in
    // variance, and it is constrained to the true rank, which gains; so allow 2.5 times the oracle's own
    // error, and at most 0.1 of ‖Σ‖_F.
    const fitted = denseCovariance(fit);
    const oracle = new Float64Array(d * d);
    for (let i = 0; i < n; i++)
      for (let a = 0; a < d; a++)
        for (let b = 0; b < d; b++) oracle[a * d + b]! += ((x[i * d + a]! - truth.mean[a]!) * (x[i * d + b]! - truth.mean[b]!)) / n;
    const rel = (m: Float64Array) =>
      Math.sqrt(m.reduce((s, v, t) => s + (v - sigmaTrue[t]!) ** 2, 0) / sigmaTrue.reduce((s, v) => s + v * v, 0));
    const errFit = rel(fitted);
    const errOracle = rel(oracle);
    console.log(`relative Frobenius error of Σ: fit ${errFit.toFixed(4)}, complete-data oracle ${errOracle.toFixed(4)}`);
    expect(errFit).toBeLessThan(Math.min(0.1, 2.5 * errOracle));
  });

  it('is deterministic: the same seed gives the same prior, another seed another start', async () => {
    const truth = randomPrior(10, 2, 6);
    const { y, mask } = observe(truth, 300, 0.3, 0.05, 7);
    const o = { rank: 2, iterations: 5, sigmaY: 0.05 };
    const a = await fitGaussianPrior(y, mask, 300, 10, { ...o, seed: 11 });
    const b = await fitGaussianPrior(y, mask, 300, 10, { ...o, seed: 11 });
    const c = await fitGaussianPrior(y, mask, 300, 10, { ...o, seed: 12 });
    for (const k of ['mean', 'factor', 'diag'] as const) expect(Array.from(b[k])).toEqual(Array.from(a[k]));
    expect(b.logLikelihood).toEqual(a.logLikelihood);
    expect(Array.from(c.factor)).not.toEqual(Array.from(a.factor));
    const s1 = posteriorSample(a, y, mask, 300, 10, 0.05, 9, 3);
    expect(Array.from(posteriorSample(a, y, mask, 300, 10, 0.05, 9, 3))).toEqual(Array.from(s1));
    expect(Array.from(posteriorSample(a, y, mask, 300, 10, 0.05, 9, 4))).not.toEqual(Array.from(s1));
  });

  it('stops with the abort reason when the signal is aborted between iterations', async () => {
    const truth = randomPrior(8, 2, 8);
    const { y, mask } = observe(truth, 100, 0.3, 0.05, 9);
    const ac = new AbortController();
    const its: number[] = [];
    const run = fitGaussianPrior(y, mask, 100, 8, {
      rank: 2,
      iterations: 50,
      sigmaY: 0.05,
      signal: ac.signal,
      onIteration: (it) => (its.push(it), it === 2 && ac.abort(new Error('stop'))),
    });
    await expect(run).rejects.toThrow('stop');
    expect(its).toEqual([0, 1, 2]);
  });
});

describe('Gaussian prior: arguments', () => {
  const y = new Float32Array(12);
  const mask = new Uint8Array(12).fill(1);
  const o = { rank: 2, sigmaY: 0.1 };

  it('rejects wrong lengths, types, NaN observations, bad masks and bad options, naming the argument', async () => {
    await expect(fitGaussianPrior(new Float32Array(11), mask, 3, 4, o)).rejects.toThrow(/^y: expected n × d = 3 × 4 = 12 values, got 11$/);
    await expect(fitGaussianPrior(y, new Uint8Array(13), 3, 4, o)).rejects.toThrow(/^mask: expected n × d = 3 × 4 = 12 values, got 13$/);
    await expect(fitGaussianPrior([] as unknown as Float32Array, mask, 3, 4, o)).rejects.toThrow(TypeError);
    await expect(fitGaussianPrior(y, mask, 0, 4, o)).rejects.toThrow(/^n: expected a positive integer, got 0$/);
    const nan = Float32Array.from(y);
    nan[5] = NaN;
    await expect(fitGaussianPrior(nan, mask, 3, 4, o)).rejects.toThrow(
      /^y: expected finite observed values, got NaN at sample 1, coordinate 1$/,
    );
    const hidden = Uint8Array.from(mask);
    hidden[5] = 0;
    await expect(fitGaussianPrior(nan, hidden, 3, 4, o)).resolves.toBeDefined(); // a placeholder may hold anything
    const two = Uint8Array.from(mask);
    two[7] = 2;
    await expect(fitGaussianPrior(y, two, 3, 4, o)).rejects.toThrow(/^mask: expected 0 or 1, got 2 at sample 1, coordinate 3$/);
    await expect(fitGaussianPrior(y, mask, 3, 4, { ...o, rank: 0 })).rejects.toThrow(
      /^options\.rank: expected an integer in \[1, d = 4\], got 0$/,
    );
    await expect(fitGaussianPrior(y, mask, 3, 4, { ...o, rank: 5 })).rejects.toThrow(/got 5$/);
    await expect(fitGaussianPrior(y, mask, 3, 4, { ...o, sigmaY: -1 })).rejects.toThrow(
      /^options\.sigmaY: expected a finite number ≥ 0, got -1$/,
    );
    await expect(fitGaussianPrior(y, mask, 3, 4, { ...o, minVariance: 0 })).rejects.toThrow(/^options\.minVariance/);
    await expect(fitGaussianPrior(y, mask, 3, 4, { ...o, iterations: 1.5 })).rejects.toThrow(/^options\.iterations/);
  });

  it('rejects a coordinate that no sample observes (its mean is undetermined), naming it', async () => {
    const m = Uint8Array.from(mask);
    for (let i = 0; i < 3; i++) m[i * 4 + 2] = 0;
    await expect(fitGaussianPrior(y, m, 3, 4, o)).rejects.toThrow(
      /^mask: coordinate 2 is never observed in the 3 samples \(1 of 4 coordinates are not\)/,
    );
  });

  it('checks the prior and σ_y in the posterior functions', () => {
    expect(() => posteriorMean(small, smallY.subarray(0, 12), smallMask.subarray(0, 12), 3, 4, 0.1)).toThrow(/^prior: expected dim 4/);
    expect(() => posteriorMean(small, smallY, smallMask, 3, 6, NaN)).toThrow(/^sigmaY: expected a finite number ≥ 0, got NaN$/);
    expect(() => posteriorSample(small, smallY, smallMask, 3, 6, 0.1, 1, 2n ** 32n)).toThrow(/^stream: expected below 2\^32/);
    expect(() => posteriorSample(small, smallY, smallMask, 3, 6, 0.1, -1)).toThrow(TypeError);
    expect(() => observationLogLikelihood({ ...small, diag: new Float64Array(6) }, smallY, smallMask, 3, 6, 0.1)).toThrow(
      /^prior\.diag: expected finite values > 0, got 0 at coordinate 0$/,
    );
  });

  it('expandMask copies a mask shared over channels into each channel', () => {
    expect(Array.from(expandMask(Uint8Array.from([1, 0, 0, 1]), 2, 2, 2))).toEqual([1, 0, 1, 0, 0, 1, 0, 1]);
    expect(() => expandMask(new Uint8Array(3), 2, 3, 2)).toThrow(/^mask: expected n × hw = 2 × 2 = 4 values, got 3$/);
  });
});
