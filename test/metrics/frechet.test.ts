// The Fréchet distance and its linear algebra against closed forms: the 2x2 trace-root identity for
// non-commuting covariances, commuting covariances in a random basis, a pure mean shift, and a
// covariance checked against the pairwise-difference formula (a different computation of the same thing).
import { describe, expect, it } from 'vitest';
import { frechetDistance, frechetDistanceGaussians, gaussianFit } from '../../lib/index.ts';
import { meanAndCovariance, sqrtPsd, symmetricEigen, matmul } from '../../lib/metrics/linalg.ts';

/** Deterministic standard-normal-ish values from a test-local LCG (sum of 4 uniforms, centred and scaled). */
function noise(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const u = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Float64Array.from({ length: n }, () => (u() + u() + u() + u() - 2) * Math.sqrt(3));
}

/** A random orthogonal d x d matrix (Gram-Schmidt on LCG values, in the test). */
function orthogonal(d: number, seed: number): Float64Array {
  const q = noise(d * d, seed);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += q[i * d + k]! * q[j * d + k]!;
      for (let k = 0; k < d; k++) q[i * d + k]! -= dot * q[j * d + k]!;
    }
    let norm = 0;
    for (let k = 0; k < d; k++) norm += q[i * d + k]! ** 2;
    for (let k = 0; k < d; k++) q[i * d + k]! /= Math.sqrt(norm);
  }
  return q;
}

/** Q^T diag(l) Q (rows of q are the eigenvectors). */
function withEigenvalues(q: Float64Array, l: number[], d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) out[i * d + j]! += q[k * d + i]! * l[k]! * q[k * d + j]!;
  return out;
}

describe('symmetric eigendecomposition (Jacobi)', () => {
  it('recovers known eigenvalues, A V = V diag(l), and sqrt(A)^2 = A', () => {
    const d = 24;
    const l = Array.from({ length: d }, (_, i) => (i % 5 === 0 ? 0 : 10 ** (-3 + (6 * i) / d)));
    const a = withEigenvalues(orthogonal(d, 1), l, d);
    const { values, vectors } = symmetricEigen(a, d);
    const sorted = [...values].sort((x, y) => x - y);
    [...l].sort((x, y) => x - y).forEach((v, i) => expect(Math.abs(sorted[i]! - v)).toBeLessThan(1e-12 * 1e3));
    for (let k = 0; k < d; k++)
      for (let i = 0; i < d; i++) {
        let av = 0;
        for (let j = 0; j < d; j++) av += a[i * d + j]! * vectors[j * d + k]!;
        expect(Math.abs(av - values[k]! * vectors[i * d + k]!)).toBeLessThan(1e-10);
      }
    const s = sqrtPsd(a, d);
    const s2 = matmul(s, s, d);
    for (let i = 0; i < d * d; i++) expect(Math.abs(s2[i]! - a[i]!)).toBeLessThan(1e-10);
  });
});

describe('mean and covariance', () => {
  it('equal the pairwise form cov = sum_ij (x_i - x_j)(x_i - x_j)^T / (2 n (n - 1))', () => {
    const [n, d] = [40, 5];
    const x = noise(n * d, 2).map((v, k) => v + 1000 * (k % d)); // a large mean: the centred pass must not cancel
    const { mean, cov } = meanAndCovariance(x, n, d);
    for (let a = 0; a < d; a++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += x[i * d + a]!;
      expect(mean[a]).toBeCloseTo(m / n, 9);
      for (let b = 0; b < d; b++) {
        let s = 0;
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += (x[i * d + a]! - x[j * d + a]!) * (x[i * d + b]! - x[j * d + b]!);
        expect(cov[a * d + b]).toBeCloseTo(s / (2 * n * (n - 1)), 9);
      }
    }
  });
});

describe('Fréchet distance', () => {
  it('of 2x2 non-commuting Gaussians: tr sqrt(S C2 S) = sqrt(tr(C1 C2) + 2 sqrt(det C1 det C2))', () => {
    // For a 2x2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); here tr M = tr(C1 C2) and det M = det C1 det C2.
    const cases = [
      { c1: [2, 0.5, 0.5, 1], c2: [1, -0.3, -0.3, 3], m1: [0, 0], m2: [1, -2] },
      { c1: [1e-4, 0, 0, 5], c2: [2, 1.9, 1.9, 2], m1: [0.5, 0.5], m2: [0.5, 0.5] },
    ];
    for (const { c1, c2, m1, m2 } of cases) {
      const tr12 = c1[0]! * c2[0]! + c1[1]! * c2[2]! + c1[2]! * c2[1]! + c1[3]! * c2[3]!;
      const det = (c: number[]) => c[0]! * c[3]! - c[1]! * c[2]!;
      const expected =
        (m1[0]! - m2[0]!) ** 2 +
        (m1[1]! - m2[1]!) ** 2 +
        c1[0]! +
        c1[3]! +
        c2[0]! +
        c2[3]! -
        2 * Math.sqrt(tr12 + 2 * Math.sqrt(det(c1) * det(c2)));
      const fd = frechetDistanceGaussians(
        { mean: Float64Array.from(m1), cov: Float64Array.from(c1) },
        { mean: Float64Array.from(m2), cov: Float64Array.from(c2) },
      );
      expect(fd).toBeCloseTo(expected, 12);
    }
  });

  it('of commuting covariances in a random 64-d basis, singular ones included: |dm|^2 + sum (sqrt a - sqrt b)^2', () => {
    const d = 64;
    const q = orthogonal(d, 3);
    const a = Array.from({ length: d }, (_, i) => (i < 10 ? 0 : 0.5 + (i % 7)));
    const b = Array.from({ length: d }, (_, i) => (i % 3 === 0 ? 0 : 0.1 * i));
    const [ma, mb] = [noise(d, 4), noise(d, 5)];
    let expected = 0;
    for (let i = 0; i < d; i++) expected += (ma[i]! - mb[i]!) ** 2 + (Math.sqrt(a[i]!) - Math.sqrt(b[i]!)) ** 2;
    const fd = frechetDistanceGaussians({ mean: ma, cov: withEigenvalues(q, a, d) }, { mean: mb, cov: withEigenvalues(q, b, d) });
    expect(Math.abs(fd - expected)).toBeLessThan(1e-6 * expected);
  });

  it('of a set with itself is 0 (fewer samples than dimensions too), and a shifted copy gives |shift|^2', async () => {
    for (const [n, d] of [
      [200, 16],
      [20, 32],
    ] as const) {
      const x = noise(n * d, 6 + n);
      const set = { data: x, shape: [n, d] };
      expect(await frechetDistance(set, set)).toBeLessThan(1e-6);
      const shift = Float64Array.from({ length: d }, (_, k) => 0.1 * k - 0.5);
      const moved = x.map((v, k) => v + shift[k % d]!);
      const expected = shift.reduce((s, v) => s + v * v, 0);
      expect(await frechetDistance(set, { data: moved, shape: [n, d] })).toBeCloseTo(expected, 6);
    }
  });

  it('estimates the closed form from samples of two Gaussians', async () => {
    // Samples of N(0, I) and N(m, 4 I) in 8-d: FD = |m|^2 + 8 (1 - 2)^2; 20,000 samples each.
    const [n, d] = [20000, 8];
    const a = noise(n * d, 7);
    const b = noise(n * d, 8).map((v, k) => 2 * v + (k % d === 0 ? 3 : 0));
    const fd = await frechetDistance({ data: a, shape: [n, d] }, { data: b, shape: [n, d] });
    expect(fd).toBeGreaterThan(17 * 0.95);
    expect(fd).toBeLessThan(17 * 1.05);
  });

  it('rejects mismatched inputs with the expected and actual sizes', async () => {
    await expect(
      frechetDistance({ data: new Float64Array(12), shape: [3, 4] }, { data: new Float64Array(15), shape: [3, 5] }),
    ).rejects.toThrow(/b: expected vectors of 4 values \(as a\), got 5/);
    await expect(gaussianFit({ data: new Float64Array(4), shape: [1, 4] })).rejects.toThrow(
      /samples: a covariance needs at least 2 samples, got 1/,
    );
    expect(() =>
      frechetDistanceGaussians(
        { mean: new Float64Array(2), cov: new Float64Array(4) },
        { mean: new Float64Array(2), cov: new Float64Array(3) },
      ),
    ).toThrow(/b.cov: expected 2x2 = 4 values, got 3/);
  });
});
