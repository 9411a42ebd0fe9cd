// Supervised denoising training (docs/methods.md §1), the oracle every corrupted-data method is
// compared with. Every random choice of step s (batch indices, time steps, noise) comes from Philox
// streams keyed by (seed, s), so a run resumed from a checkpoint at step s repeats the uninterrupted
// run exactly. Work is queued ahead by at most two steps; only progress reports read from the device.
import { resumeTraining, saveCheckpoint } from './checkpoint.ts';
import { native } from './native.ts';
import { AdamW, EMA, type AdamWOptions } from './optim.ts';
import { Generator, philoxIntegers } from './random.ts';
import { combine, NoiseSchedule, targetOf, type Prediction } from './schedule.ts';
import { randn, tensor, zeros } from './tensor.ts';
import type { UNet } from './unet.ts';

export interface Dataset {
  /** [N, C, H, W] values, usually in [-1, 1]. */
  images: Float32Array;
  shape: readonly [number, number, number, number];
}

export interface TrainProgress {
  step: number;
  steps: number;
  /** Mean loss over the steps since the previous report. */
  loss: number;
  imagesPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface TrainOptions {
  model: UNet;
  data: Dataset;
  steps: number;
  batchSize: number;
  optimizer?: AdamWOptions;
  /** EMA decay (default 0.999); 0 keeps no EMA. */
  emaDecay?: number;
  schedule?: NoiseSchedule;
  prediction?: Prediction;
  seed?: bigint | number;
  signal?: AbortSignal;
  /** Called every `progressEvery` steps (default 10) and at the end. */
  onProgress?: (progress: TrainProgress) => void;
  progressEvery?: number;
  /** Save a checkpoint (atomically) every `every` steps and at the end. */
  checkpoint?: { path: string; every: number };
  /** Continue from this checkpoint (weights, optimizer, EMA, step). */
  resume?: string;
}

export interface TrainResult {
  /** Steps completed (the last step index + 1). */
  step: number;
  aborted: boolean;
  /** Loss of every step run in this call. */
  losses: { step: number; loss: number }[];
  optimizer: AdamW;
  ema?: EMA;
}

const STREAMS_PER_STEP = 4n;

export async function train(options: TrainOptions): Promise<TrainResult> {
  const { model, data, steps, batchSize } = options;
  const [N, C, H, W] = data.shape;
  const cfg = model.config;
  if (C !== cfg.inChannels || H !== cfg.resolution || W !== cfg.resolution)
    throw new TypeError(`train: data of shape [N, ${C}, ${H}, ${W}] does not fit the model (expects [N, ${cfg.inChannels}, ${cfg.resolution}, ${cfg.resolution}])`);
  if (cfg.outChannels !== cfg.inChannels) throw new TypeError('train: supervised denoising needs outChannels == inChannels');
  if (data.images.length !== N * C * H * W) throw new TypeError(`train: data.images has ${data.images.length} values, shape needs ${N * C * H * W}`);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`train: steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`train: batchSize must be a positive integer, got ${batchSize}`);
  const schedule = options.schedule ?? new NoiseSchedule({ kind: 'linear' });
  const prediction = options.prediction ?? 'eps';
  const seed = BigInt(options.seed ?? 0);
  const every = options.progressEvery ?? 10;
  const device = model.device;
  const optimizer = new AdamW(model, options.optimizer);
  const ema = (options.emaDecay ?? 0.999) > 0 ? new EMA(model, options.emaDecay ?? 0.999) : undefined;
  let start = 0;
  if (options.resume) start = (await resumeTraining(options.resume, { net: model, optimizer, ema })).step;

  const per = C * H * W;
  const host = new Float32Array(batchSize * per);
  const scale = 2 / (batchSize * per); // d/dout of mean((out - target)^2)
  const losses: { step: number; loss: number }[] = [];
  const pending: Promise<void>[] = [];
  const began = performance.now();
  let reportedAt = start;
  let reportedTime = began;

  const report = async (step: number) => {
    await Promise.all(pending);
    const recent = losses.filter((l) => l.step >= reportedAt && l.step < step);
    const now = performance.now();
    const elapsed = (now - began) / 1000;
    const rate = ((step - reportedAt) * batchSize) / Math.max(1e-9, (now - reportedTime) / 1000);
    options.onProgress?.({
      step,
      steps,
      loss: recent.reduce((a, l) => a + l.loss, 0) / Math.max(1, recent.length),
      imagesPerSecond: rate,
      elapsedSeconds: elapsed,
      etaSeconds: ((steps - step) * batchSize) / Math.max(1e-9, rate),
    });
    reportedAt = step;
    reportedTime = now;
  };
  const save = async (step: number) => {
    if (!options.checkpoint) return;
    await Promise.all(pending);
    await saveCheckpoint(options.checkpoint.path, model, { optimizer, ema, step, prediction, schedule: schedule.toJSON() });
  };

  let step = start;
  let aborted = false;
  for (; step < steps; step++) {
    if (options.signal?.aborted) {
      aborted = true;
      break;
    }
    const base = BigInt(step) * STREAMS_PER_STEP;
    const indices = philoxIntegers(batchSize, N, seed, base);
    const ts = philoxIntegers(batchSize, schedule.steps, seed, base + 1n);
    for (let b = 0; b < batchSize; b++) host.set(data.images.subarray(indices[b]! * per, (indices[b]! + 1) * per), b * per);
    const ab = Array.from(ts, (t) => schedule.alphaBars[t]!);
    const x0 = tensor(host, [batchSize, C, H, W], { device });
    const eps = randn([batchSize, C, H, W], { generator: new Generator(seed, { stream: base + 2n }), device });
    const xt = combine([[x0, ab.map(Math.sqrt)], [eps, ab.map((a) => Math.sqrt(1 - a))]]);
    const target = targetOf(prediction, x0, eps, ab);
    const t = tensor(Float32Array.from(ts), [batchSize], { device });
    model.zeroGrad();
    const { out, tape } = model.forward(xt, t);
    const gout = combine([[out, new Array(batchSize).fill(scale)], [target, new Array(batchSize).fill(-scale)]]);
    const sumsq = zeros([1], { device });
    native.sumSquares(gout.handle(), sumsq.handle());
    model.backward(tape, gout);
    tape.release();
    optimizer.step();
    ema?.update();
    for (const u of [x0, eps, xt, target, t, out, gout]) u.dispose();
    const s = step;
    // loss = mean((out - target)^2) = |gout|^2 / scale^2 / count
    pending.push(sumsq.toArray().then((v) => {
      losses.push({ step: s, loss: v[0]! / (scale * scale * batchSize * per) });
      sumsq.dispose();
    }));
    if (pending.length > 2) await pending.shift();
    const bad = losses.find((l) => !Number.isFinite(l.loss));
    if (bad) {
      await Promise.all(pending);
      throw new Error(
        `train: the loss became ${bad.loss} at step ${bad.step}; stopping before the weights are damaged further ` +
          '(lower the learning rate, set optimizer.maxGradNorm, or resume from the last checkpoint)',
      );
    }
    if ((step + 1) % every === 0) await report(step + 1);
    if (options.checkpoint && (step + 1) % options.checkpoint.every === 0) await save(step + 1);
  }
  await Promise.all(pending);
  if (step % every !== 0 || aborted) await report(step);
  if (options.checkpoint && (step % options.checkpoint.every !== 0 || aborted)) await save(step);
  losses.sort((a, b) => a.step - b.step);
  return { step, aborted, losses, optimizer, ema };
}
