// Supervised denoising training (docs/methods.md §1), the oracle every corrupted-data method is
// compared with. Every random choice of step s (batch indices, time steps, noise) comes from Philox
// streams keyed by (seed, s), so a run resumed from a checkpoint at step s repeats the uninterrupted
// run exactly. The optimisation loop (queueing ahead, progress, checkpoints, abort) is training-loop.ts.
import { native } from './native.ts';
import { Generator, philoxIntegers } from './random.ts';
import { combine, NoiseSchedule, targetOf, type Prediction } from './schedule.ts';
import { randn, tensor, zeros, type Tensor } from './tensor.ts';
import { trainingLoop, type LoopOptions, type TrainResult } from './training-loop.ts';

export type { TrainProgress, TrainResult } from './training-loop.ts';

export interface Dataset {
  /** [N, C, H, W] values, usually in [-1, 1]. */
  images: Float32Array;
  shape: readonly [number, number, number, number];
}

export interface TrainOptions extends LoopOptions {
  data: Dataset;
  schedule?: NoiseSchedule;
  prediction?: Prediction;
  seed?: bigint | number;
}

const STREAMS_PER_STEP = 4n;

/**
 * The draws of supervised step `step` on a set of `count` samples of `per` values each: batch rows
 * (Philox stream 4·step), time steps (4·step + 1), noise (4·step + 2), and x_t = √ᾱ x0 + √(1 − ᾱ) ε.
 * Every DSM-style trainer (supervised, bootstrap views and residual) draws through here, so their
 * resumed runs repeat the uninterrupted ones. `host` is a reusable gather buffer of batchSize·per.
 */
export function noisedBatch(
  images: Float32Array,
  count: number,
  shape: readonly number[],
  o: { schedule: NoiseSchedule; seed: bigint; step: number; batchSize: number; device: string; host: Float32Array },
): { indices: ArrayLike<number>; ts: ArrayLike<number>; ab: number[]; x0: Tensor; eps: Tensor; xt: Tensor } {
  const per = shape.reduce((a, b) => a * b, 1);
  const base = BigInt(o.step) * STREAMS_PER_STEP;
  const indices = philoxIntegers(o.batchSize, count, o.seed, base);
  const ts = philoxIntegers(o.batchSize, o.schedule.steps, o.seed, base + 1n);
  for (let b = 0; b < o.batchSize; b++) o.host.set(images.subarray(indices[b]! * per, (indices[b]! + 1) * per), b * per);
  const ab = Array.from(ts, (t) => o.schedule.alphaBars[t]!);
  const full = [o.batchSize, ...shape];
  const x0 = tensor(o.host, full, { device: o.device });
  let eps: Tensor | undefined;
  try {
    eps = randn(full, { generator: new Generator(o.seed, { stream: base + 2n }), device: o.device });
    const xt = combine([
      [x0, ab.map(Math.sqrt)],
      [eps, ab.map((a) => Math.sqrt(1 - a))],
    ]);
    return { indices, ts, ab, x0, eps, xt };
  } catch (e) {
    x0.dispose(); // out of memory half-way: free what was made
    eps?.dispose();
    throw e;
  }
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const { model, data, batchSize } = options;
  const [N, C, H, W] = data.shape;
  const cfg = model.config;
  if (C !== cfg.inChannels || H !== cfg.resolution || W !== cfg.resolution)
    throw new TypeError(
      `train: data of shape [N, ${C}, ${H}, ${W}] does not fit the model (expects [N, ${cfg.inChannels}, ${cfg.resolution}, ${cfg.resolution}])`,
    );
  if (cfg.outChannels !== cfg.inChannels) throw new TypeError('train: supervised denoising needs outChannels == inChannels');
  if (data.images.length !== N * C * H * W)
    throw new TypeError(`train: data.images has ${data.images.length} values, shape needs ${N * C * H * W}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`train: batchSize must be a positive integer, got ${batchSize}`);
  const schedule = options.schedule ?? new NoiseSchedule({ kind: 'linear' });
  const prediction = options.prediction ?? 'eps';
  const seed = BigInt(options.seed ?? 0);
  const device = model.device;
  const host = new Float32Array(batchSize * C * H * W);

  return trainingLoop(options, { prediction, schedule: schedule.toJSON() }, (step) => {
    // Everything made here is disposed however the step ends: after an out-of-memory half-way through,
    // the batch's tensors go at once instead of holding memory until the garbage collector runs.
    const made: { dispose(): void }[] = [];
    const keep = <T extends { dispose(): void }>(x: T): T => (made.push(x), x);
    try {
      const { ts, ab, x0, eps, xt } = noisedBatch(data.images, N, [C, H, W], { schedule, seed, step, batchSize, device, host });
      made.push(x0, eps, xt);
      const target = keep(targetOf(prediction, x0, eps, ab));
      const t = keep(tensor(Float32Array.from(ts), [batchSize], { device }));
      const { out, tape } = model.forward(xt, t);
      made.push(out, { dispose: () => tape.release() });
      const { gout, loss } = mseGradient(out, target);
      keep(gout);
      model.backward(tape, gout);
      return { loss };
    } finally {
      for (const u of made) u.dispose();
    }
  });
}

/**
 * The gradient of mean((out − target)²) with respect to `out`, and that loss once the device has
 * computed it (the caller disposes `gout`).
 */
export function mseGradient(out: Tensor, target: Tensor): { gout: Tensor; loss: Promise<number> } {
  const B = out.shape[0]!;
  const scale = 2 / out.numel;
  const gout = combine([
    [out, new Array(B).fill(scale)],
    [target, new Array(B).fill(-scale)],
  ]);
  let sumsq: Tensor | undefined;
  try {
    sumsq = zeros([1], { device: out.device });
    native.sumSquares(gout.handle(), sumsq.handle());
  } catch (e) {
    gout.dispose(); // out of memory half-way: free what was made
    sumsq?.dispose();
    throw e;
  }
  // loss = mean((out - target)^2) = |gout|^2 / scale^2 / count
  const loss = sumsq.toArray().then((v) => {
    sumsq.dispose();
    return v[0]! / (scale * scale * out.numel);
  });
  return { gout, loss };
}
