// DiffEM's conditional denoiser d_θ(x̃, σ, y) ≈ E[x | x̃, y] (docs/diffem.md): a UNet on
// concat(c_in x̃, y, m) — the noisy image, the measurement (zeros where nothing was observed) and the
// mask — under EDM preconditioning; its training on pairs (x, y, m); and the conditional ancestral
// sampler of the E-step. Every random choice of training step s comes from Philox streams keyed by
// (seed, s) (4s batch rows, 4s+1 noise levels, 4s+2 noise), so a resumed run repeats the uninterrupted one.
import { seededNormals } from '../metrics/normals.ts';
import { synchronize } from '../memory.ts';
import { IN_FLIGHT } from '../sample.ts';
import { Generator, philoxIntegers } from '../random.ts';
import { combine } from '../schedule.ts';
import { randn, tensor, type Tensor } from '../tensor.ts';
import { mseGradient } from '../train.ts';
import { trainingLoop, type LoopOptions, type TrainResult } from '../training-loop.ts';
import type { UNet } from '../unet.ts';
import { concatChannels } from '../bootstrap/views.ts';
import type { MeasurementSet } from '../corruption/dataset.ts';
import type { DegradationKind } from '../corruption/operator.ts';
import { karrasSigmas, precondition, resolveEdm, type EdmConfig, type ResolvedEdm } from './edm.ts';

/** Images with their measurements: y has x's shape (zeros where unobserved), mask is [N, 1, H, W] of 0/1. */
export interface ConditionalPairs {
  shape: readonly [number, number, number, number];
  x: Float32Array;
  y: Float32Array;
  mask: Float32Array;
}

/**
 * Observations alone (what the E-step conditions on). For masks given directly, y is the masked image and
 * mask the mask; observationsFrom (observations.ts) fills them for any operator: y the condition image
 * (A⁺y or Aᵀy), mask the operator's channel, with the measurement set kept as `source`.
 */
export type Observations = Omit<ConditionalPairs, 'x'> & {
  /** The measurement set they were computed from (absent for masks given directly). */
  source?: MeasurementSet;
  /** What y holds (default 'pinv'; the same for masks). */
  condition?: 'pinv' | 'adjoint';
  /** The operator's kind (default 'mask'). */
  kind?: DegradationKind;
};

/** A denoiser on the VE process: D(x̃, σ) ≈ E[x | x̃] for a batch at one noise level. */
export type VeDenoiser = (x: Tensor, sigma: number) => Tensor;

/** Checks that `model` takes concat(x̃, y, m) and returns an image: inChannels 2C + 1, outChannels C. */
export function checkConditionalModel(model: UNet, shape: readonly number[], what: string): void {
  const [, C, H, W] = shape as [number, number, number, number];
  const cfg = model.config;
  if (cfg.inChannels !== 2 * C + 1 || cfg.outChannels !== C || cfg.resolution !== H || H !== W)
    throw new TypeError(
      `${what}: images of shape [N, ${C}, ${H}, ${W}] need a conditional UNet with inChannels ${2 * C + 1} (x̃, y and the mask), outChannels ${C} ` +
        `and resolution ${H}; got inChannels ${cfg.inChannels}, outChannels ${cfg.outChannels}, resolution ${cfg.resolution}`,
    );
}

export function checkObservations(o: Observations, what: string): void {
  const [N, C, H, W] = o.shape;
  if (![N, C, H, W].every((v) => Number.isInteger(v) && v > 0))
    throw new TypeError(`${what}.shape: expected [N, C, H, W] of positive integers, got ${JSON.stringify(o.shape)}`);
  if (o.y.length !== N * C * H * W)
    throw new RangeError(`${what}.y: expected ${N * C * H * W} values for shape [${o.shape.join(', ')}], got ${o.y.length}`);
  if (o.mask.length !== N * H * W) throw new RangeError(`${what}.mask: expected ${N * H * W} values ([N, 1, H, W]), got ${o.mask.length}`);
  // A mask is 0/1; the channel of another operator (observations.ts) lies in [0, 1].
  if ((o.kind ?? 'mask') === 'mask') {
    for (let i = 0; i < o.mask.length; i++)
      if (o.mask[i] !== 0 && o.mask[i] !== 1) throw new RangeError(`${what}.mask: value ${i} is ${o.mask[i]}, expected 0 or 1`);
  } else
    for (let i = 0; i < o.mask.length; i++)
      if (!(o.mask[i]! >= 0 && o.mask[i]! <= 1))
        throw new RangeError(`${what}.mask: value ${i} is ${o.mask[i]}, expected the operator's channel in [0, 1]`);
  for (let i = 0; i < o.y.length; i++)
    if (!Number.isFinite(o.y[i]!)) throw new RangeError(`${what}.y: value ${i} is ${o.y[i]} (measurements must be finite)`);
}

/** Rows `rows` of the observations as the conditioning tensor concat(y, m) [B, C + 1, H, W]. */
function conditioning(o: Observations, rows: ArrayLike<number>, device: string): Tensor {
  const [, C, H, W] = o.shape;
  const B = rows.length;
  const per = C * H * W;
  const hw = H * W;
  const cond = new Float32Array(B * (per + hw));
  for (let b = 0; b < B; b++) {
    const i = rows[b]!;
    cond.set(o.y.subarray(i * per, (i + 1) * per), b * (per + hw));
    cond.set(o.mask.subarray(i * hw, (i + 1) * hw), b * (per + hw) + per);
  }
  return tensor(cond, [B, C + 1, H, W], { device });
}

/** D(x̃, σ) = c_skip x̃ + c_out F(concat(c_in x̃, cond), c_noise) for per-sample σ. */
function denoise(model: UNet, edm: ResolvedEdm, xt: Tensor, sigmas: ArrayLike<number>, cond: Tensor, params?: Tensor): Tensor {
  const pc = Array.from(sigmas, (s) => precondition(edm, s));
  const scaled = combine([[xt, pc.map((p) => p.cIn)]]);
  const input = concatChannels(scaled, cond);
  const t = tensor(
    Float32Array.from(pc, (p) => p.cNoise),
    [pc.length],
    { device: xt.device },
  );
  const f = model.predict(input, t, { params });
  const d = combine([
    [xt, pc.map((p) => p.cSkip)],
    [f, pc.map((p) => p.cOut)],
  ]);
  for (const u of [scaled, input, t, f]) u.dispose();
  return d;
}

/** The trained conditional model as a VE denoiser for rows `rows` of the observations. */
export function conditionalDenoiser(
  model: UNet,
  observations: Observations,
  rows: ArrayLike<number>,
  options: { edm?: EdmConfig; params?: Tensor } = {},
): VeDenoiser & Disposable {
  const edm = resolveEdm(options.edm);
  const cond = conditioning(observations, rows, model.device);
  const fn = (x: Tensor, sigma: number) => denoise(model, edm, x, new Array<number>(rows.length).fill(sigma), cond, options.params);
  return Object.assign(fn, { [Symbol.dispose]: () => cond.dispose() });
}

export interface ConditionalTrainOptions extends LoopOptions {
  data: ConditionalPairs;
  edm?: EdmConfig;
  seed?: bigint | number;
}

/**
 * Trains d_θ by EDM's denoising loss on the pairs: σ drawn log-normally, x̃ = x + σ n, and the network
 * regresses F* = (x − c_skip x̃) / c_out (so λ(σ)‖D − x‖² becomes a plain mean square).
 */
export async function trainConditional(options: ConditionalTrainOptions): Promise<TrainResult> {
  const { model, data, batchSize } = options;
  checkObservations(data, 'trainConditional: data');
  checkConditionalModel(model, data.shape, 'trainConditional');
  const [N, C, H, W] = data.shape;
  if (data.x.length !== N * C * H * W)
    throw new RangeError(`trainConditional: data.x: expected ${N * C * H * W} values, got ${data.x.length}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`trainConditional: batchSize must be a positive integer, got ${batchSize}`);
  const edm = resolveEdm(options.edm);
  const seed = BigInt(options.seed ?? 0);
  const device = model.device;
  const per = C * H * W;
  const host = new Float32Array(batchSize * per);

  return trainingLoop(options, { prediction: 'x0', schedule: edm }, (step) => {
    const base = BigInt(step) * 4n;
    const rows = philoxIntegers(batchSize, N, seed, base);
    const sigmas = Array.from(seededNormals(batchSize, seed, base + 1n), (z) => Math.exp(edm.pMean + edm.pStd * z));
    for (let b = 0; b < batchSize; b++) host.set(data.x.subarray(rows[b]! * per, (rows[b]! + 1) * per), b * per);
    const x = tensor(host, [batchSize, C, H, W], { device });
    const noise = randn([batchSize, C, H, W], { generator: new Generator(seed, { stream: base + 2n }), device });
    const xt = combine([
      [x, new Array<number>(batchSize).fill(1)],
      [noise, sigmas],
    ]);
    const pc = sigmas.map((s) => precondition(edm, s));
    const cond = conditioning(data, rows, device);
    const scaled = combine([[xt, pc.map((p) => p.cIn)]]);
    const input = concatChannels(scaled, cond);
    const t = tensor(
      Float32Array.from(pc, (p) => p.cNoise),
      [batchSize],
      { device },
    );
    const target = combine([
      [x, pc.map((p) => 1 / p.cOut)],
      [xt, pc.map((p) => -p.cSkip / p.cOut)],
    ]);
    const { out, tape } = model.forward(input, t);
    const { gout, loss } = mseGradient(out, target);
    model.backward(tape, gout);
    tape.release();
    for (const u of [x, noise, xt, cond, scaled, input, t, target, out, gout]) u.dispose();
    return { loss };
  });
}

export interface VeSampleOptions {
  /** [n, C, H, W] of the samples. */
  shape: readonly number[];
  device: string;
  edm?: EdmConfig;
  /** ancestral (default; DiffEM's E-step) or heun (EDM's deterministic second-order solver). */
  method?: 'ancestral' | 'heun';
  /** Number of noise levels (default 256). */
  steps?: number;
  generator?: Generator;
  signal?: AbortSignal;
}

/**
 * Samples the VE process from x ~ N(0, σ_max² I) down Karras's grid σ_max > … > σ_min, then returns
 * D(x, σ_min).
 * - ancestral: each step draws x_{σ'} from its Gaussian law given x_σ and x = D(x_σ, σ):
 *   x_{σ'} = r x_σ + (1 − r) D + σ' √(1 − r) z, r = σ'² / σ². It leaves out the (1 − r)² Var[x | x_σ]
 *   that the uncertainty of D adds, so it under-disperses by O(1/steps): 5 % of the variance at 256
 *   steps, 17 % at 64, for a Gaussian (test/diffem/conditional.test.ts).
 * - heun: the probability-flow ODE dx/dσ = (x − D(x, σ)) / σ by Heun's method (Karras et al.,
 *   Algorithm 1): second order, so far fewer steps reach the same accuracy; deterministic given x_0.
 */
export async function veSample(denoiser: VeDenoiser, options: VeSampleOptions): Promise<Tensor> {
  const edm = resolveEdm(options.edm);
  const method = options.method ?? 'ancestral';
  if (method !== 'ancestral' && method !== 'heun')
    throw new TypeError(`method: expected "ancestral" or "heun", got ${JSON.stringify(method)}`);
  const sigmas = karrasSigmas(edm, options.steps ?? 256);
  const generator = options.generator ?? new Generator(0);
  const n = options.shape[0]!;
  const same = (v: number) => new Array<number>(n).fill(v);
  const first = randn(options.shape, { generator, device: options.device });
  let x = combine([[first, same(sigmas[0]!)]]);
  first.dispose();
  for (let i = 0; i < sigmas.length; i++) {
    options.signal?.throwIfAborted();
    const s = sigmas[i]!;
    const d = denoiser(x, s);
    let next: Tensor;
    if (i === sigmas.length - 1) next = d;
    else if (method === 'ancestral') {
      const sn = sigmas[i + 1]!;
      const r = (sn * sn) / (s * s);
      const z = randn(options.shape, { generator, device: options.device });
      next = combine([
        [x, same(r)],
        [d, same(1 - r)],
        [z, same(sn * Math.sqrt(1 - r))],
      ]);
      z.dispose();
      d.dispose();
    } else {
      // Euler to σ', then the trapezoid of the slopes (x − D)/σ at both ends.
      const sn = sigmas[i + 1]!;
      const h = sn - s;
      const slope = combine([
        [x, same(1 / s)],
        [d, same(-1 / s)],
      ]);
      const euler = combine([
        [x, same(1)],
        [slope, same(h)],
      ]);
      const d2 = denoiser(euler, sn);
      const slope2 = combine([
        [euler, same(1 / sn)],
        [d2, same(-1 / sn)],
      ]);
      next = combine([
        [x, same(1)],
        [slope, same(h / 2)],
        [slope2, same(h / 2)],
      ]);
      for (const u of [d, slope, euler, d2, slope2]) u.dispose();
    }
    x.dispose();
    x = next;
    if (i % IN_FLIGHT === IN_FLIGHT - 1) await synchronize(options.device); // bounds the memory queued steps hold
  }
  return x;
}

/**
 * One posterior sample per observation (the E-step), in batches of `batchSize` rows: x̂_i ~ q_θ(· | y_i).
 * The batch that starts at row s draws its noise from Generator(seed, stream s): the samples are a
 * function of (seed, batchSize).
 */
export async function conditionalSample(
  model: UNet,
  observations: Observations,
  options: {
    edm?: EdmConfig;
    method?: 'ancestral' | 'heun';
    steps?: number;
    batchSize?: number;
    seed?: bigint | number;
    params?: Tensor;
    signal?: AbortSignal;
    onBatch?: (done: number, total: number) => void;
  } = {},
): Promise<Float32Array> {
  checkObservations(observations, 'conditionalSample: observations');
  checkConditionalModel(model, observations.shape, 'conditionalSample');
  const [N, C, H, W] = observations.shape;
  const per = C * H * W;
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize: expected a positive integer, got ${batchSize}`);
  const out = new Float32Array(N * per);
  for (let start = 0; start < N; start += batchSize) {
    const rows = Array.from({ length: Math.min(batchSize, N - start) }, (_, k) => start + k);
    using d = conditionalDenoiser(model, observations, rows, { edm: options.edm, params: options.params });
    const x = await veSample(d, {
      shape: [rows.length, C, H, W],
      device: model.device,
      edm: options.edm,
      method: options.method,
      steps: options.steps,
      generator: new Generator(BigInt(options.seed ?? 0), { stream: BigInt(start) }),
      signal: options.signal,
    });
    out.set(await x.toArray(), start * per);
    x.dispose();
    options.onBatch?.(start + rows.length, N);
  }
  return out;
}
