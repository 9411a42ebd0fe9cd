// What the metrics take: a Tensor (read back from its device) or host values with a shape. The first
// dimension always counts samples; the rest is one sample (an image [C, H, W] or a feature vector).
import { Tensor } from '../tensor.ts';

/** A batch of samples: a Tensor, or row-major host values with their shape (first dimension = samples). */
export type SampleBatch = Tensor | { readonly data: Float32Array | Float64Array; readonly shape: readonly number[] };

export interface HostBatch {
  data: Float32Array | Float64Array;
  shape: number[];
  /** Samples (shape[0]). */
  n: number;
  /** Values per sample (the product of the other dimensions). */
  size: number;
}

/** The values of `batch` on the host, its shape checked: `rank` fixes the number of dimensions when given. */
export async function hostBatch(batch: SampleBatch, what: string, rank?: number): Promise<HostBatch> {
  let data: Float32Array | Float64Array;
  let shape: number[];
  if (batch instanceof Tensor) {
    shape = [...batch.shape];
    data = await batch.toArray();
  } else if (batch !== null && typeof batch === 'object' && (batch.data instanceof Float32Array || batch.data instanceof Float64Array)) {
    shape = Array.isArray(batch.shape) ? [...batch.shape] : [];
    data = batch.data;
  } else {
    throw new TypeError(`${what}: expected a Tensor or { data: Float32Array | Float64Array, shape }, got ${describe(batch)}`);
  }
  if (shape.length < 1 || !shape.every((d) => Number.isSafeInteger(d) && d >= 1))
    throw new TypeError(`${what}: expected a shape of positive integers, got ${JSON.stringify(shape)}`);
  if (rank !== undefined && shape.length !== rank)
    throw new TypeError(`${what}: expected ${rank} dimensions, got shape ${JSON.stringify(shape)}`);
  const n = shape[0]!;
  const size = shape.slice(1).reduce((a, b) => a * b, 1);
  if (data.length !== n * size) throw new TypeError(`${what}: shape ${JSON.stringify(shape)} needs ${n * size} values, got ${data.length}`);
  return { data, shape, n, size };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return v.constructor?.name ?? 'object';
}

/** Throws unless `value` is an integer in [min, max]. */
export function checkInteger(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max)
    throw new RangeError(
      `${what}: expected an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${JSON.stringify(value)}`,
    );
  return value as number;
}
