// Restoring a set of measurements: K posterior samples per measurement, drawn in batches of rows
// (row = measurement i, sample k), with their per-pixel mean and standard deviation.
import { Generator } from '../random.ts';
import { tensor, type Tensor } from '../tensor.ts';
import type { Degradation } from '../corruption/operator.ts';
import type { PriorDenoiser } from './denoiser.ts';
import { posteriorBatch, type PosteriorOptions } from './samplers.ts';

export interface RestoreOptions extends Omit<PosteriorOptions, 'generator' | 'onStep'> {
  /** K: samples per measurement (default 1). */
  samples?: number;
  /** Rows (measurement, sample) per batch (default 64). */
  batchSize?: number;
  /** The batch starting at row s draws from Generator(seed, stream s): samples depend on (seed, batchSize). */
  seed?: bigint | number;
  /** Steps done and total over the whole run. */
  onProgress?: (done: number, total: number) => void;
}

export interface Restoration {
  /** [N, K, ...signalShape] */
  samples: Float32Array;
  /** [N, ...signalShape]: the mean of each measurement's K samples (an estimate of E[x0 | y]). */
  mean: Float32Array;
  /** [N, ...signalShape]: their standard deviation (divisor K − 1; zeros when K = 1). */
  std: Float32Array;
  count: number;
  samplesPerMeasurement: number;
  signalShape: readonly number[];
}

/**
 * Posterior samples for every measurement of `op` (batchSize N) and `y` ([N, ...measurementShape], a
 * tensor on any device or host values). Cancelled by options.signal: the AbortError propagates and
 * nothing stays allocated.
 */
export async function restore(
  denoiser: PriorDenoiser,
  op: Degradation,
  y: Tensor | Float32Array,
  options: RestoreOptions,
): Promise<Restoration> {
  const N = op.batchSize;
  const K = options.samples ?? 1;
  if (!Number.isSafeInteger(K) || K < 1) throw new RangeError(`samples: expected a positive integer, got ${JSON.stringify(K)}`);
  const batchSize = options.batchSize ?? 64;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize: expected a positive integer, got ${JSON.stringify(batchSize)}`);
  const m = op.measurementShape.reduce((a, b) => a * b, 1);
  const host = y instanceof Float32Array ? y : await y.toArray();
  if (host.length !== N * m)
    throw new RangeError(`y: expected ${N * m} values ([${[N, ...op.measurementShape].join(', ')}]), got ${host.length}`);
  const d = op.signalShape.reduce((a, b) => a * b, 1);
  const rows = N * K;
  const samples = new Float32Array(rows * d);
  const seed = BigInt(options.seed ?? 0);
  const batches = Math.ceil(rows / batchSize);
  for (let start = 0, b = 0; start < rows; start += batchSize, b++) {
    options.signal?.throwIfAborted();
    const idx = Array.from({ length: Math.min(batchSize, rows - start) }, (_, j) => Math.floor((start + j) / K));
    const sub = op.select(idx);
    const ys = new Float32Array(idx.length * m);
    idx.forEach((i, j) => ys.set(host.subarray(i * m, (i + 1) * m), j * m));
    const yt = tensor(ys, [idx.length, ...op.measurementShape], { device: op.device });
    let x: Tensor | undefined;
    try {
      x = await posteriorBatch(denoiser, sub, yt, {
        ...options,
        generator: new Generator(seed, { stream: BigInt(start) }),
        onStep: (done, total) => {
          options.onProgress?.(b * total + done, batches * total);
        },
      });
      samples.set(await x.toArray(), start * d);
    } finally {
      x?.dispose();
      yt.dispose();
      sub.dispose();
    }
  }
  const { mean, std } = momentsOf(samples, N, K, d);
  return { samples, mean, std, count: N, samplesPerMeasurement: K, signalShape: Object.freeze([...op.signalShape]) };
}

/** Per-measurement mean and standard deviation over K samples, in double. */
export function momentsOf(samples: Float32Array, N: number, K: number, d: number): { mean: Float32Array; std: Float32Array } {
  const mean = new Float32Array(N * d),
    std = new Float32Array(N * d);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += samples[(i * K + k) * d + j]!;
      const mu = s / K;
      let q = 0;
      for (let k = 0; k < K; k++) q += (samples[(i * K + k) * d + j]! - mu) ** 2;
      mean[i * d + j] = mu;
      std[i * d + j] = K > 1 ? Math.sqrt(q / (K - 1)) : 0;
    }
  return { mean, std };
}
