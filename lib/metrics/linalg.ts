// The library's dense linear algebra, in double on the host: the mean and covariance of a set of
// vectors and the eigendecomposition of a symmetric matrix by the cyclic Jacobi method (the Fréchet
// distance), and Cholesky factors with their solves (the Gaussian mixtures of score-error/, the
// Gaussian prior of diffem/). Matrices are row-major Float64Arrays of n x n values. Sizes here are
// small (128 features, ranks up to a few dozen), where O(n^3) costs milliseconds.

/** The mean [d] and the unbiased covariance [d x d] (divided by n - 1) of n vectors of d values, in double. */
export function meanAndCovariance(x: Float32Array | Float64Array, n: number, d: number): { mean: Float64Array; cov: Float64Array } {
  if (n < 2) throw new RangeError(`covariance: needs at least 2 samples, got ${n}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  // Centre first (two passes) rather than sum x x^T - n mu mu^T, which cancels catastrophically when
  // the mean is large next to the spread.
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = x[i * d + j]! - mean[j]!;
    for (let a = 0; a < d; a++) {
      const ra = row[a]!;
      if (ra === 0) continue;
      const base = a * d;
      for (let b = a; b < d; b++) cov[base + b]! += ra * row[b]!;
    }
  }
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b]! / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  return { mean, cov };
}

/**
 * Eigenvalues and eigenvectors of the symmetric matrix `a` (n x n, not modified) by cyclic Jacobi
 * rotations: each rotation zeroes one off-diagonal pair, sweeps repeat until the off-diagonal mass is
 * below 1e-15 of the matrix's norm. Jacobi is backward stable and its small eigenvalues come out with
 * small absolute error (about 1e-16 ||A||), which is what the matrix square root below needs.
 * Returns the values and the eigenvectors as the columns of `vectors` (a = V diag(values) V^T).
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: expected ${n}x${n} = ${n * n} values, got ${a.length}`);
  const m = Float64Array.from(a);
  // Symmetrise: the caller's matrix may carry rounding asymmetry of a product.
  for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) m[p * n + q] = m[q * n + p] = 0.5 * (m[p * n + q]! + m[q * n + p]!);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let norm = 0;
  for (let i = 0; i < n * n; i++) norm += m[i]! * m[i]!;
  const tol = 1e-30 * norm; // squared: off-diagonal Frobenius norm below 1e-15 ||A||_F
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += 2 * m[p * n + q]! ** 2;
    if (off <= tol) break;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (apq === 0) continue;
        const app = m[p * n + p]!;
        const aqq = m[q * n + q]!;
        // The rotation angle that zeroes a_pq, by the smaller root t = tan(angle) (|angle| <= pi/4),
        // which keeps the rotation close to the identity and the update stable (Golub & Van Loan 8.5).
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          // Columns p and q of M (M <- M J) ...
          const mkp = m[k * n + p]!;
          const mkq = m[k * n + q]!;
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          // ... then rows p and q (M <- J^T M).
          const mpk = m[p * n + k]!;
          const mqk = m[q * n + k]!;
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        // Set the annihilated pair exactly: rounding leaves a tiny residue there otherwise.
        m[p * n + q] = m[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i]!;
  return { values, vectors: v };
}

/**
 * The symmetric square root of a symmetric positive semi-definite matrix: V diag(sqrt(max(l, 0))) V^T.
 * Eigenvalues that rounding pushed slightly below zero (a covariance from fewer samples than
 * dimensions is singular) are taken as zero.
 */
export function sqrtPsd(a: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  const roots = values.map((l) => Math.sqrt(Math.max(l, 0)));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = i; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += vectors[i * n + k]! * roots[k]! * vectors[j * n + k]!;
      out[i * n + j] = out[j * n + i] = acc;
    }
  return out;
}

/** a b for n x n matrices. */
export function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j]! += aik * b[k * n + j]!;
    }
  return out;
}

/** The lower Cholesky factor of the symmetric positive definite n×n matrix `a` (row-major; `a` is not modified). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        if (!(s > 0)) throw new RangeError(`cholesky: the matrix is not positive definite (pivot ${i} is ${s})`);
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / l[j * n + j]!;
    }
  return l;
}

/** Solves (L Lᵀ) x = b for the lower factor L (n×n), in place in b. */
export function cholSolve(l: Float64Array, n: number, b: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * b[k]!;
    b[i] = s / l[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * b[k]!;
    b[i] = s / l[i * n + i]!;
  }
}
