// Training of the transfer model (docs/transfer.md): multi-task pre-training (one shared encoder h, head
// k trained on task k), fine-tuning of a new head with h frozen, and the from-scratch baseline; all one
// DSM loop. Each row of a batch draws its task uniformly and then a pair of that task, so the expected
// loss is the paper's ERM (1/K) Σ_k (1/n_k) Σ_i ℓ_k(x_i, y_i) even when the n_k differ.
//
// The loop is the host-side counterpart of lib/training-loop.ts (which drives a device UNet and its
// device AdamW): the same progress reports, atomic checkpoints every `every` steps and at the end,
// resume, and AbortSignal; every random draw of step s comes from Philox streams keyed by (seed, s),
// so a resumed run repeats the uninterrupted one exactly.
import { seededNormals } from '../metrics/normals.ts';
import { HostAdamW, type AdamWOptions, type ParamGroup } from '../optim.ts';
import { philoxBlock, philoxIntegers } from '../random.ts';
import { progressReporter, type TrainProgress } from '../training-loop.ts';
import { loadTransfer, saveTransfer } from './checkpoint.ts';
import { alphaOf, sigmaOf, type TransferModel } from './model.ts';

/** n pairs: x [n, xDim] and y [n, yDim], row-major. */
export interface PairSet {
  x: Float32Array;
  y: Float32Array;
  n: number;
}

export interface TransferTrainOptions {
  model: TransferModel;
  /** Task k trains head k (as many tasks as heads). */
  tasks: PairSet[];
  /** Keep h fixed (fine-tuning): its weights are never written. */
  freezeEncoder?: boolean;
  steps: number;
  batchSize: number;
  optimizer?: AdamWOptions;
  /** Cosine decay of the learning rate to 0 over `steps` (after warm-up). */
  cosine?: boolean;
  seed?: bigint | number;
  /** What the checkpoint calls this run ('pretrain', 'finetune', 'scratch'). */
  phase?: string;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  progressEvery?: number;
  checkpoint?: { path: string; every: number };
  /** Continue from this checkpoint of the same run (weights, optimiser moments, step). */
  resume?: string;
  /** Stored in the checkpoint's metadata. */
  extra?: Record<string, unknown>;
}

export interface TransferTrainResult {
  step: number;
  aborted: boolean;
  losses: { step: number; loss: number }[];
  optimizer: HostAdamW;
}

const STREAMS_PER_STEP = 4n;

function uniforms01(n: number, seed: bigint, stream: bigint): Float64Array {
  const out = new Float64Array(n);
  for (let b = 0; 4 * b < n; b++) {
    const w = philoxBlock(seed, 0n, stream, b);
    for (let j = 0; j < 4 && 4 * b + j < n; j++) out[4 * b + j] = (w[j]! + 0.5) / 4294967296;
  }
  return out;
}

export function checkPairs(set: PairSet, xDim: number, yDim: number, what: string): void {
  if (!Number.isInteger(set?.n) || set.n < 1) throw new RangeError(`${what}.n: expected a positive integer, got ${JSON.stringify(set?.n)}`);
  if (!(set.x instanceof Float32Array) || set.x.length !== set.n * xDim)
    throw new RangeError(`${what}.x: expected a Float32Array of n * xDim = ${set.n * xDim} values, got ${set.x?.length}`);
  if (!(set.y instanceof Float32Array) || set.y.length !== set.n * yDim)
    throw new RangeError(`${what}.y: expected a Float32Array of n * yDim = ${set.n * yDim} values, got ${set.y?.length}`);
}

/** The optimiser's groups: `h` (frozen when fine-tuning) and `heads.<k>`. */
export function paramGroups(model: TransferModel, freezeEncoder: boolean): ParamGroup[] {
  return [
    { name: 'h', params: model.encoder.params, grads: model.encoder.grads, frozen: freezeEncoder },
    ...model.heads.map((h, k) => ({ name: `heads.${k}`, params: h.params, grads: h.grads })),
  ];
}

/**
 * One step's gradients (added into the model's grads, already zeroed) and its loss, the mean of
 * (ε̂ − ε)² over the batch's values. Exported for the tests, which check it against finite differences.
 */
export function dsmStep(
  model: TransferModel,
  tasks: PairSet[],
  o: { seed: bigint; step: number; batchSize: number; freezeEncoder: boolean; wTable?: Float32Array[] },
): number {
  const c = model.config;
  const B = o.batchSize;
  const base = BigInt(o.step) * STREAMS_PER_STEP;
  const taskOf = philoxIntegers(B, tasks.length, o.seed, base);
  const u = uniforms01(2 * B, o.seed, base + 1n); // first B pick the pair, next B the time
  const eps = seededNormals(B * c.xDim, o.seed, base + 2n);
  const rows: number[][] = tasks.map(() => []);
  for (let b = 0; b < B; b++) rows[taskOf[b]!]!.push(b);

  const y = new Float32Array(B * c.yDim);
  const x0 = new Float32Array(B * c.xDim);
  const ts = new Float64Array(B);
  const rowOf = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const set = tasks[taskOf[b]!]!;
    const i = Math.min(set.n - 1, Math.floor(u[b]! * set.n));
    rowOf[b] = i;
    y.set(set.y.subarray(i * c.yDim, (i + 1) * c.yDim), b * c.yDim);
    x0.set(set.x.subarray(i * c.xDim, (i + 1) * c.xDim), b * c.xDim);
    ts[b] = c.t0 + (c.tMax - c.t0) * u[B + b]!;
  }
  // A frozen h gives every pair the same w at every step: read it from the table made once.
  const enc = o.freezeEncoder && o.wTable ? undefined : model.encoder.forward(y, B);
  const wOf = (b: number): Float32Array => {
    if (enc) return enc.out.subarray(b * c.repDim, (b + 1) * c.repDim);
    const i = rowOf[b]!;
    return o.wTable![taskOf[b]!]!.subarray(i * c.repDim, (i + 1) * c.repDim);
  };
  const gw = o.freezeEncoder ? undefined : new Float32Array(B * c.repDim);
  const scale = 2 / (B * c.xDim);
  let sum = 0;
  rows.forEach((rs, k) => {
    const n = rs.length;
    if (n === 0) return;
    const xt = new Float32Array(n * c.xDim);
    const w = new Float32Array(n * c.repDim);
    const tk = new Float64Array(n);
    const target = new Float32Array(n * c.xDim);
    rs.forEach((b, r) => {
      const a = alphaOf(ts[b]!);
      const s = sigmaOf(ts[b]!);
      for (let i = 0; i < c.xDim; i++) {
        const e = eps[b * c.xDim + i]!;
        target[r * c.xDim + i] = e;
        xt[r * c.xDim + i] = a * x0[b * c.xDim + i]! + s * e;
      }
      w.set(wOf(b), r * c.repDim);
      tk[r] = ts[b]!;
    });
    const head = model.heads[k]!;
    const { out, cache } = head.forward(model.headInput(xt, w, tk, n), n);
    model.addSkip(out, xt, tk, n); // a constant of the weights: the gradient is unchanged
    const g = new Float32Array(out.length);
    for (let i = 0; i < out.length; i++) {
      const d = out[i]! - target[i]!;
      sum += d * d;
      g[i] = scale * d;
    }
    const gin = head.backward(cache, g, { inputGrad: gw !== undefined });
    if (gw && gin) {
      const width = c.xDim + c.repDim + c.timeFeatures;
      rs.forEach((b, r) => gw.set(gin.subarray(r * width + c.xDim, r * width + c.xDim + c.repDim), b * c.repDim));
    }
  });
  if (gw && enc) model.encoder.backward(enc.cache, gw);
  return sum / (B * c.xDim);
}

export async function trainTransfer(options: TransferTrainOptions): Promise<TransferTrainResult> {
  const { model, tasks, steps, batchSize } = options;
  const c = model.config;
  if (!Array.isArray(tasks) || tasks.length !== model.heads.length)
    throw new RangeError(
      `transfer train: expected one task per head (${model.heads.length}), got ${Array.isArray(tasks) ? tasks.length : typeof tasks}`,
    );
  tasks.forEach((t, k) => checkPairs(t, c.xDim, c.yDim, `tasks[${k}]`));
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`transfer train: steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`transfer train: batchSize must be a positive integer, got ${batchSize}`);
  const every = options.progressEvery ?? 10;
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`transfer train: progressEvery must be a positive integer, got ${every}`);
  if (options.checkpoint && !(Number.isInteger(options.checkpoint.every) && options.checkpoint.every >= 1))
    throw new RangeError(`transfer train: checkpoint.every must be a positive integer, got ${options.checkpoint.every}`);
  const freezeEncoder = options.freezeEncoder ?? false;
  const seed = BigInt(options.seed ?? 0);
  const phase = options.phase ?? (freezeEncoder ? 'finetune' : 'pretrain');
  const optimizer = new HostAdamW(paramGroups(model, freezeEncoder), options.optimizer);

  let start = 0;
  if (options.resume) {
    const saved = await loadTransfer(options.resume);
    if (saved.meta.phase !== phase || saved.meta.seed !== String(seed) || saved.model.heads.length !== model.heads.length)
      throw new TypeError(
        `${options.resume}: a ${saved.meta.phase} checkpoint with seed ${saved.meta.seed} and ${saved.model.heads.length} heads cannot resume this ${phase} run (seed ${seed}, ${model.heads.length} heads)`,
      );
    if (JSON.stringify(saved.model.config) !== JSON.stringify(c))
      throw new TypeError(`${options.resume}: its model configuration differs from this run's`);
    model.encoder.params.set(saved.model.encoder.params);
    model.heads.forEach((h, k) => h.params.set(saved.model.heads[k]!.params));
    model.mean.set(saved.model.mean);
    model.variance.set(saved.model.variance);
    optimizer.loadState(saved.optimizer);
    start = saved.meta.step;
  }

  const losses: { step: number; loss: number }[] = [];
  const report = progressReporter(start, steps, batchSize, losses, options.onProgress);
  const save = (step: number) =>
    options.checkpoint
      ? saveTransfer(options.checkpoint.path, model, { phase, step, steps, seed: String(seed), extra: options.extra }, optimizer)
      : Promise.resolve();
  const warm = optimizer.options.warmupSteps;
  const wTable = freezeEncoder ? tasks.map((t) => model.encode(t.y, t.n)) : undefined;

  let step = start;
  let aborted = false;
  for (; step < steps; step++) {
    // Let timers and signal handlers run between steps (the arithmetic is synchronous).
    if (step % 4 === 0) await new Promise<void>((r) => setImmediate(r));
    if (options.signal?.aborted) {
      aborted = true;
      break;
    }
    model.encoder.grads.fill(0);
    for (const h of model.heads) h.grads.fill(0);
    const loss = dsmStep(model, tasks, { seed, step, batchSize, freezeEncoder, wTable });
    if (!Number.isFinite(loss))
      throw new Error(
        `transfer train: the loss became ${loss} at step ${step}; stopping before the weights are damaged further ` +
          '(lower the learning rate, set maxGradNorm, or resume from the last checkpoint)',
      );
    const decay = options.cosine && step >= warm ? 0.5 * (1 + Math.cos((Math.PI * (step - warm)) / Math.max(1, steps - warm))) : 1;
    optimizer.step(decay);
    losses.push({ step, loss });
    if ((step + 1) % every === 0) report(step + 1);
    if (options.checkpoint && (step + 1) % options.checkpoint.every === 0) await save(step + 1);
  }
  if (step % every !== 0 || aborted) report(step);
  if (options.checkpoint && (step % options.checkpoint.every !== 0 || aborted)) await save(step);
  return { step, aborted, losses, optimizer };
}

/**
 * The source head that best fits the target pairs: the one with the lowest DSM loss on them (`draws`
 * noise draws per pair from Philox(seed)), computed with the pre-trained h. Starting f_0 from it uses
 * only the m target pairs, no knowledge of which source task is "near" the target.
 */
export function selectSourceHead(
  pretrained: TransferModel,
  pairs: PairSet,
  o: { seed?: bigint | number; draws?: number } = {},
): { head: number; losses: number[] } {
  const c = pretrained.config;
  checkPairs(pairs, c.xDim, c.yDim, 'pairs');
  const draws = o.draws ?? 8;
  const seed = BigInt(o.seed ?? 0);
  const rows = pairs.n * draws;
  const u = uniforms01(rows, seed, 1n);
  const eps = seededNormals(rows * c.xDim, seed, 2n);
  const w0 = pretrained.encode(pairs.y, pairs.n);
  const xt = new Float32Array(rows * c.xDim);
  const w = new Float32Array(rows * c.repDim);
  const ts = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const i = r % pairs.n;
    ts[r] = c.t0 + (c.tMax - c.t0) * u[r]!;
    const a = alphaOf(ts[r]!);
    const s = sigmaOf(ts[r]!);
    for (let j = 0; j < c.xDim; j++) xt[r * c.xDim + j] = a * pairs.x[i * c.xDim + j]! + s * eps[r * c.xDim + j]!;
    w.set(w0.subarray(i * c.repDim, (i + 1) * c.repDim), r * c.repDim);
  }
  const losses = pretrained.heads.map((_, k) => {
    const e = pretrained.predictNoise(k, xt, w, ts, rows);
    let s = 0;
    for (let j = 0; j < e.length; j++) s += (e[j]! - eps[j]!) ** 2;
    return s / e.length;
  });
  return { head: losses.indexOf(Math.min(...losses)), losses };
}
