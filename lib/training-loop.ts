// The optimisation loop every trainer shares (supervised, GSURE, bootstrap, ...): zero the gradients,
// let the method queue one step's forward and backward passes, AdamW, EMA, then report, checkpoint and
// honour an AbortSignal. A method only says how one step's gradients are made (`StepFn`); the loop
// keeps at most two steps queued ahead of the device, so the host prepares step s + 1 (batch gather,
// noise, uploads) while the device still runs step s, and only progress reports wait for it.
import { resumeTraining, saveCheckpoint } from './checkpoint.ts';
import { AdamW, EMA, type AdamWOptions } from './optim.ts';
import type { Prediction } from './schedule.ts';
import type { UNet } from './unet.ts';

export interface TrainProgress {
  step: number;
  steps: number;
  /** Mean loss over the steps since the previous report. */
  loss: number;
  imagesPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

/**
 * A function of the step that reports progress since its previous call: the mean loss of the steps
 * recorded in between, throughput, elapsed time and ETA. Shared by every trainer's loop.
 */
export function progressReporter(
  start: number,
  steps: number,
  batchSize: number,
  losses: readonly { step: number; loss: number }[],
  onProgress: ((p: TrainProgress) => void) | undefined,
): (step: number) => void {
  const began = performance.now();
  let reportedAt = start;
  let reportedTime = began;
  return (step) => {
    const recent = losses.filter((l) => l.step >= reportedAt && l.step < step);
    const now = performance.now();
    const rate = ((step - reportedAt) * batchSize) / Math.max(1e-9, (now - reportedTime) / 1000);
    onProgress?.({
      step,
      steps,
      loss: recent.reduce((a, l) => a + l.loss, 0) / Math.max(1, recent.length),
      imagesPerSecond: rate,
      elapsedSeconds: (now - began) / 1000,
      etaSeconds: ((steps - step) * batchSize) / Math.max(1e-9, rate),
    });
    reportedAt = step;
    reportedTime = now;
  };
}

export interface LoopOptions {
  model: UNet;
  steps: number;
  /** Images per step, for the throughput figure. */
  batchSize: number;
  optimizer?: AdamWOptions;
  /** EMA decay (default 0.999); 0 keeps no EMA. */
  emaDecay?: number;
  signal?: AbortSignal;
  /** Called every `progressEvery` steps (default 10) and at the end. */
  onProgress?: (progress: TrainProgress) => void;
  progressEvery?: number;
  /** Save a checkpoint (atomically) every `every` steps and at the end. */
  checkpoint?: { path: string; every: number };
  /** Continue from this checkpoint (weights, optimizer, EMA, step). */
  resume?: string;
  /**
   * 'cosine': after the warm-up, the rate falls from lr to 0 along a half cosine over the remaining
   * `steps` (the step count, not a time box, sets its length). Default 'constant'.
   */
  lrDecay?: 'constant' | 'cosine';
}

/** The factor of step `step`'s rate under `decay` (1 for 'constant'); the warm-up is the optimizer's. */
export function lrDecayFactor(decay: 'constant' | 'cosine' | undefined, step: number, steps: number, warmupSteps = 0): number {
  if (decay !== 'cosine' || step < warmupSteps) return 1;
  return 0.5 * (1 + Math.cos((Math.PI * (step - warmupSteps)) / Math.max(1, steps - warmupSteps)));
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

/**
 * Queues step `step`'s passes, adding its gradients into model.grads (already zeroed). Returns (or
 * resolves to, once every pass is queued) the step's loss, itself a promise settled when the device
 * has computed it. The loop queues the optimiser only after that, so a method may await between its
 * passes. Every random choice must come from streams keyed by (seed, step), so that a resumed run
 * repeats the uninterrupted one.
 */
export type StepFn = (step: number) => QueuedStep | Promise<QueuedStep>;
export interface QueuedStep {
  loss: Promise<number>;
}

/** What a checkpoint records about the method, so that sampling from it needs no flags. */
export interface CheckpointMeta {
  prediction: Prediction;
  schedule: unknown;
  /** Method-specific strings for the checkpoint's user metadata (e.g. Ambient Diffusion's masks' law). */
  metadata?: Record<string, string>;
}

export async function trainingLoop(options: LoopOptions, meta: CheckpointMeta, stepFn: StepFn): Promise<TrainResult> {
  const { model, steps } = options;
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`train: steps must be a positive integer, got ${steps}`);
  const every = options.progressEvery ?? 10;
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`train: progressEvery must be a positive integer, got ${every}`);
  if (options.checkpoint && !(Number.isInteger(options.checkpoint.every) && options.checkpoint.every >= 1))
    throw new RangeError(`train: checkpoint.every must be a positive integer, got ${options.checkpoint.every}`);
  if (options.lrDecay !== undefined && options.lrDecay !== 'constant' && options.lrDecay !== 'cosine')
    throw new RangeError(`train: lrDecay must be "constant" or "cosine", got ${JSON.stringify(options.lrDecay)}`);
  const optimizer = new AdamW(model, options.optimizer);
  const decay = options.emaDecay ?? 0.999;
  const ema = decay > 0 ? new EMA(model, decay) : undefined;
  try {
    return await loop(options, meta, stepFn, optimizer, ema);
  } catch (e) {
    // The caller never gets them: free their memory now (after an out-of-memory above all), not at the next GC.
    optimizer.dispose();
    ema?.dispose();
    throw e;
  }
}

async function loop(
  options: LoopOptions,
  meta: CheckpointMeta,
  stepFn: StepFn,
  optimizer: AdamW,
  ema: EMA | undefined,
): Promise<TrainResult> {
  const { model, steps, batchSize } = options;
  const every = options.progressEvery ?? 10;
  let start = 0;
  if (options.resume) start = (await resumeTraining(options.resume, { net: model, optimizer, ema })).step;

  const losses: { step: number; loss: number }[] = [];
  const pending: Promise<void>[] = [];
  const progress = progressReporter(start, steps, batchSize, losses, options.onProgress);
  const report = async (step: number) => {
    await Promise.all(pending);
    progress(step);
  };
  const save = async (step: number) => {
    if (!options.checkpoint) return;
    await Promise.all(pending);
    await saveCheckpoint(options.checkpoint.path, model, {
      optimizer,
      ema,
      step,
      prediction: meta.prediction,
      schedule: meta.schedule,
      metadata: meta.metadata,
    });
  };

  let step = start;
  let aborted = false;
  for (; step < steps; step++) {
    if (options.signal?.aborted) {
      aborted = true;
      break;
    }
    model.zeroGrad();
    const s = step;
    let loss: Promise<number>;
    try {
      ({ loss } = await stepFn(s));
    } catch (e) {
      await Promise.allSettled(pending); // no stray rejections from the steps before
      throw e;
    }
    optimizer.step(lrDecayFactor(options.lrDecay, s, steps, options.optimizer?.warmupSteps));
    ema?.update();
    pending.push(loss.then((value) => void losses.push({ step: s, loss: value })));
    if (pending.length > 2) await pending.shift();
    const bad = losses.find((l) => !Number.isFinite(l.loss));
    if (bad) {
      await Promise.allSettled(pending);
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

/**
 * A training as an async iterator of its progress reports:
 *
 *   const run = trainingRun((opts) => train({ ...opts, model, data, steps: 1000, batchSize: 64 }));
 *   for await (const p of run) console.log(p.step, p.loss);
 *   const result = await run.result;
 *
 * Leaving the loop early (break, return, throw) aborts the training; `result` then resolves with
 * `aborted: true` once the steps already queued have finished. A training error is thrown by the loop
 * and rejects `result`.
 */
export class TrainingRun implements AsyncIterable<TrainProgress> {
  readonly result: Promise<TrainResult>;
  readonly #controller = new AbortController();
  readonly #queue: TrainProgress[] = [];
  #wake: (() => void) | null = null;
  #settled = false;
  #error: unknown = undefined;

  constructor(
    start: (hooks: { signal: AbortSignal; onProgress: (p: TrainProgress) => void }) => Promise<TrainResult>,
    signal?: AbortSignal,
  ) {
    if (signal) {
      if (signal.aborted) this.#controller.abort(signal.reason);
      else signal.addEventListener('abort', () => this.#controller.abort(signal.reason), { once: true });
    }
    this.result = start({
      signal: this.#controller.signal,
      onProgress: (p) => {
        this.#queue.push(p);
        this.#wake?.();
      },
    }).finally(() => {
      this.#settled = true;
      this.#wake?.();
    });
    this.result.catch((e: unknown) => {
      this.#error = e;
    });
  }

  /** Stops the training after the step that is running (the result says `aborted: true`). */
  abort(): void {
    this.#controller.abort();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TrainProgress> {
    let finished = false;
    try {
      for (;;) {
        while (this.#queue.length > 0) yield this.#queue.shift()!;
        if (this.#settled) {
          await this.result.catch(() => undefined);
          if (this.#error !== undefined) throw this.#error;
          finished = true;
          return;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = null;
      }
    } finally {
      if (!finished) this.abort();
    }
  }
}

/** Starts a training and returns it as a `TrainingRun` (an async iterator of progress). */
export function trainingRun(
  start: (hooks: { signal: AbortSignal; onProgress: (p: TrainProgress) => void }) => Promise<TrainResult>,
  options: { signal?: AbortSignal } = {},
): TrainingRun {
  return new TrainingRun(start, options.signal);
}
