// The contract every degradation operator H = U Σ Vᵀ fulfils for GSURE training (docs/corruption.md):
// the SVD as fast transforms, never as dense matrices. The SVD domain has the size of the signal
// (x̄ = Vᵀx); singularValues() gives s_i per sample and coordinate, 0 where nothing is observed.
// Every method takes and returns batches [N, ...shape] on the operator's device, where N is the number
// of samples whose parameters (masks) the operator carries; results are new tensors the caller owns.
import { native } from '../native.ts';
import { into, Tensor, type Shape } from '../tensor.ts';

export type DegradationKind = 'mask' | 'blockaverage' | 'fourier';

export interface Degradation extends Disposable {
  readonly kind: DegradationKind;
  /** N: the samples the operator holds parameters for (every batch passed in has N rows). */
  readonly batchSize: number;
  readonly device: string;
  /** [C, H, W] of x (fourier: [2, H, W], real and imaginary parts). */
  readonly signalShape: readonly number[];
  /** [C', H', W'] of y. */
  readonly measurementShape: readonly number[];
  /** x̄ = Vᵀx (signal -> SVD domain), orthogonal. */
  vt(x: Tensor): Tensor;
  /** x = V x̄. */
  v(xbar: Tensor): Tensor;
  /** [N, ...signalShape]: s_i >= 0 per sample and SVD coordinate (0: unobserved). */
  singularValues(): Tensor;
  /** y = H x, noise-free. */
  apply(x: Tensor): Tensor;
  /** Hᵀ y. */
  adjoint(y: Tensor): Tensor;
  /** H† y (the Moore-Penrose pseudo-inverse). */
  pinv(y: Tensor): Tensor;
  /** ȳ = Σ† Uᵀ y in the SVD domain, exactly zero on unobserved coordinates. */
  toSvd(y: Tensor): Tensor;
  /** [N, ...measurementShape]: 1 where a measurement coordinate carries data, 0 where it is a
   *  placeholder (a dropped pixel, an unsampled k-space line); null when every coordinate does. */
  measurementMask(): Tensor | null;
  /** The operator of rows `indices` of this one (a training batch drawn from a data set). */
  select(indices: readonly number[]): Degradation;
  dispose(): void;
}

/** Checks a batch argument: a live tensor [N, ...shape] on `device`. */
export function checkBatch(t: unknown, what: string, n: number, shape: Shape, device: string): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${what}: expected a Tensor, got ${t === null ? 'null' : typeof t}`);
  const want = [n, ...shape];
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i]))
    throw new RangeError(`${what}: expected shape ${JSON.stringify(want)}, got ${JSON.stringify(t.shape)}`);
  if (t.device !== device) throw new RangeError(`${what}: expected a tensor on ${device} (the operator's device), got ${t.device}`);
  t.handle(what);
  return t;
}

/** Checks row indices for select(): integers in [0, n), at least one. */
export function checkIndices(indices: unknown, n: number): number[] {
  if (!Array.isArray(indices) || indices.length === 0)
    throw new TypeError(`indices: expected a non-empty array of row numbers, got ${JSON.stringify(indices)}`);
  for (const [j, i] of indices.entries())
    if (!Number.isSafeInteger(i) || i < 0 || i >= n)
      throw new RangeError(`indices[${j}]: expected an integer in [0, ${n}), got ${JSON.stringify(i)}`);
  return [...indices] as number[];
}

// The one allocate/queue/free-on-error helper lives with the tensors; re-exported for this folder.
export { into } from '../tensor.ts';

/** a * b elementwise, a new tensor. */
export function mul(a: Tensor, b: Tensor): Tensor {
  const [ha, hb] = [a.handle('a'), b.handle('b')];
  return into(a.device, a.shape, (out) => native.mul(ha, hb, out));
}

/** Checks a shape argument: positive integers, `dims` of them. */
export function checkShape(shape: unknown, what: string, dims = 3): number[] {
  if (!Array.isArray(shape) || shape.length !== dims || !shape.every((d) => Number.isSafeInteger(d) && d >= 1))
    throw new TypeError(`${what}: expected ${dims} positive integers, got ${JSON.stringify(shape)}`);
  return [...shape] as number[];
}

export function checkCount(n: unknown, what: string): number {
  if (!Number.isSafeInteger(n) || (n as number) < 1) throw new TypeError(`${what}: expected a positive integer, got ${JSON.stringify(n)}`);
  return n as number;
}

/** A seed for lib/random.ts: a non-negative integer below 2^64. */
export function toSeed(seed: unknown, what = 'seed'): bigint {
  if (typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0) return BigInt(seed);
  if (typeof seed === 'bigint' && seed >= 0n && seed < 1n << 64n) return seed;
  throw new TypeError(`${what}: expected a non-negative integer below 2^64, got ${String(seed)}`);
}
