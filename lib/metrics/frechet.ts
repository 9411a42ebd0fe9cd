// The Fréchet distance between two Gaussians, and between the Gaussian fits of two sets of vectors
// (the quantity FID computes in Inception features; FD-FMNIST computes it in the features of a
// Fashion-MNIST classifier, fd-fmnist.ts). The squared 2-Wasserstein distance between N(m1, C1) and
// N(m2, C2) is
//
//   d^2 = |m1 - m2|^2 + tr C1 + tr C2 - 2 tr (C1^1/2 C2 C1^1/2)^1/2.
//
// Numerics. The usual code takes sqrtm(C1 C2) of a non-symmetric product, whose eigenvalues rounding
// can make complex or negative. C1 C2 is similar to the symmetric S C2 S with S = C1^1/2, so their
// square roots have the same trace; S C2 S is positive semi-definite, so its trace root is the sum of
// sqrt(max(l, 0)) over its eigenvalues l, found by Jacobi (linalg.ts) in double. Clamping at zero only
// discards rounding noise of size ~1e-16 ||C||, whose square root (~1e-8 sqrt||C||) bounds the error of
// the trace term; covariances from fewer samples than dimensions (singular ones) need no special case.
import { checkInteger, hostBatch, type SampleBatch } from './batch.ts';
import { matmul, meanAndCovariance, sqrtPsd, symmetricEigen } from './linalg.ts';

/** A Gaussian fit: mean [d] and covariance [d x d], row-major, in double. */
export interface Gaussian {
  mean: Float64Array;
  cov: Float64Array;
}

/** The mean and unbiased covariance of a set of N vectors ([N, d], or [N, ...] flattened per sample). */
export async function gaussianFit(samples: SampleBatch, what = 'samples'): Promise<Gaussian> {
  const b = await hostBatch(samples, what);
  if (b.n < 2) throw new RangeError(`${what}: a covariance needs at least 2 samples, got ${b.n}`);
  return meanAndCovariance(b.data, b.n, b.size);
}

/** The squared Fréchet (2-Wasserstein) distance between N(a.mean, a.cov) and N(b.mean, b.cov). */
export function frechetDistanceGaussians(a: Gaussian, b: Gaussian): number {
  const d = a.mean.length;
  checkInteger(d, 'a.mean.length', 1);
  if (b.mean.length !== d) throw new RangeError(`b.mean: expected ${d} values (as a.mean), got ${b.mean.length}`);
  for (const [name, c] of [
    ['a.cov', a.cov],
    ['b.cov', b.cov],
  ] as const)
    if (c.length !== d * d) throw new RangeError(`${name}: expected ${d}x${d} = ${d * d} values, got ${c.length}`);
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (a.mean[i]! - b.mean[i]!) ** 2;
  let traces = 0;
  for (let i = 0; i < d; i++) traces += a.cov[i * d + i]! + b.cov[i * d + i]!;
  const s = sqrtPsd(a.cov, d);
  const { values } = symmetricEigen(matmul(matmul(s, b.cov, d), s, d), d);
  let traceRoot = 0;
  for (const l of values) traceRoot += Math.sqrt(Math.max(l, 0));
  // Mathematically >= 0; rounding can leave a tiny negative value for (near-)identical fits.
  return Math.max(0, meanTerm + traces - 2 * traceRoot);
}

/** The Fréchet distance between the Gaussian fits of two sets of vectors (each [N, d], N >= 2). */
export async function frechetDistance(a: SampleBatch, b: SampleBatch): Promise<number> {
  const [ga, gb] = [await gaussianFit(a, 'a'), await gaussianFit(b, 'b')];
  if (ga.mean.length !== gb.mean.length)
    throw new RangeError(`b: expected vectors of ${ga.mean.length} values (as a), got ${gb.mean.length}`);
  return frechetDistanceGaussians(ga, gb);
}
