// One GSURE-Diffusion loss step (docs/gsure.md, docs/methods.md §2): from a batch of measurements in
// the SVD domain, draw t, ε and the probes, noise, run the network on x_t and on the probe shifts,
// evaluate the loss terms, and backpropagate. The divergence's gradient is the weighted difference of
// ordinary backward passes (the terms kernel gives each forward's output gradient), so no double
// backward is needed. Parameter gradients are added into the model's (the caller zeroes them).
import { Generator, philoxIntegers, type RngKey } from '../random.ts';
import type { NoiseSchedule } from '../schedule.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { divergenceCoefficients, gsureProbes, gsureTerms, minValidStep, svdNoise, type GsureVariant } from './kernels.ts';

/** A batch of measurements in the SVD domain of their degradation (see kernels.ts for the encodings). */
export interface GsureBatch {
  /** ȳ = Σ† Uᵀ y, [N, C, H, W]; 0 where unobserved. */
  ybar: Tensor;
  /** c = P w², w² = 1 / E[P]: [N, C, H, W] or one sample's [1, C, H, W]. */
  weight: Tensor;
  /** v = P σ0² / s²: same shapes as weight; 0 where unobserved. */
  variance: Tensor;
  /** An upper bound of v: σ0² / (smallest nonzero s)², σ0² for masks. */
  vMax: number;
  /** σ0, per sample or one value: only the 'official' variant needs it. */
  sigma0?: number | ArrayLike<number>;
  /** The orthogonal V of the SVD as transforms (identity when absent, e.g. masks): v(x̄) = V x̄, vt(x) = Vᵀ x. */
  basis?: { v(xbar: Tensor): Tensor | Promise<Tensor>; vt(x: Tensor): Tensor | Promise<Tensor> };
}

/** The network as forward/backward callbacks; a UNet fits as it is. It must predict x0. */
export interface GsureModel<TapeT extends { release(): void }> {
  forward(x: Tensor, t: Tensor): { out: Tensor; tape: TapeT };
  /** Adds the parameter gradients of ⟨out, gout⟩ into the model's gradients. */
  backward(tape: TapeT, gout: Tensor): unknown;
}

export interface GsureOptions {
  schedule: NoiseSchedule;
  seed: bigint | number;
  /** The step index: the draws of step s come from Philox streams 4s + 1 (t), 4s + 2 (ε), 4s + 3 (probes); 4s is the trainer's (batch indices). */
  step: number;
  /** Hutchinson probes per sample (default 1). */
  probes?: number;
  /** Finite-difference step along each probe (default DEFAULT_GSURE_EPS = 1e-3). */
  eps?: number;
  /** 'forward' (default): 1 + probes network passes; 'central': 1 + 2 probes passes, a smaller difference error (docs/gsure.md). */
  difference?: 'central' | 'forward';
  variant?: GsureVariant;
  /** Λ of the 'official' variant (default 1e-4). */
  lambda?: number;
  /** t is drawn uniformly from [minT, maxT) (default 0). */
  minT?: number;
  /**
   * The end of t's range (default T, the schedule's length). Below T it leaves out the noisiest steps,
   * where the linear schedule's signal is almost gone (alphaBar < 0.01 past t = 600 for the demo's), to
   * spend a continuation's steps where the x0 prediction is more than the data's mean. (For the demo's
   * prior it gained nothing measurable: docs/demo.md.)
   */
  maxT?: number;
  /** GSURE needs the network to predict x0; anything else is an error. */
  prediction?: 'x0';
}

export interface GsureLossValues {
  /** mean_b (fit_b + div_b): the loss whose gradient was accumulated. */
  loss: number;
  fit: number;
  divergence: number;
  perSample: { fit: Float64Array; divergence: Float64Array };
}

export interface GsureStepResult {
  /** The time step of each sample, and its ᾱ. */
  t: Int32Array;
  alphaBar: Float64Array;
  /** The loss values, once the device has finished the step. */
  values: Promise<GsureLossValues>;
}

/**
 * Defaults chosen from the divergence study (docs/gsure.md): in float32 the per-probe error of forward
 * differences at eps = 1e-3 is under 1 % of the probe's own spread (Hutchinson's variance dominates), and
 * both schemes' mean error is O(eps²) with Gaussian probes, so the cheaper scheme wins: spend a third
 * pass on a second probe rather than on a central difference.
 */
export const DEFAULT_GSURE_EPS = 1e-3;
export const DEFAULT_GSURE_DIFFERENCE = 'forward' as const;
export const GSURE_STREAMS_PER_STEP = 4n;

/** The random draws of one step: time steps and the keys of ε and of the probes. */
export function gsureDraws(
  n: number,
  perSample: number,
  probes: number,
  options: { schedule: NoiseSchedule; seed: bigint | number; step: number; minT?: number; maxT?: number },
): {
  t: Int32Array;
  noiseKey: RngKey;
  probeKey: RngKey;
} {
  const seed = BigInt(options.seed);
  const base = BigInt(options.step) * GSURE_STREAMS_PER_STEP;
  const minT = options.minT ?? 0;
  const maxT = options.maxT ?? options.schedule.steps;
  const t = philoxIntegers(n, maxT - minT, seed, base + 1n).map((x) => x + minT);
  return {
    t,
    noiseKey: new Generator(seed, { stream: base + 2n }).next(n * perSample),
    probeKey: new Generator(seed, { stream: base + 3n }).next(n * probes * perSample),
  };
}

const apply = async (f: ((x: Tensor) => Tensor | Promise<Tensor>) | undefined, x: Tensor): Promise<Tensor> => (f ? await f(x) : x);

/** One GSURE step: queues the passes, adds the gradients of the batch-mean loss into the model. */
export async function gsureStep<TapeT extends { release(): void }>(
  model: GsureModel<TapeT>,
  batch: GsureBatch,
  options: GsureOptions,
): Promise<GsureStepResult> {
  const probes = options.probes ?? 1;
  const eps = options.eps ?? DEFAULT_GSURE_EPS;
  const central = (options.difference ?? DEFAULT_GSURE_DIFFERENCE) === 'central';
  const variant = options.variant ?? 'unbiased';
  const { schedule } = options;
  if (options.prediction !== undefined && options.prediction !== 'x0')
    throw new TypeError(
      `prediction: GSURE needs a network that predicts x0 (the loss compares h̄ with ȳ), got ${JSON.stringify(options.prediction)}`,
    );
  if (options.difference !== undefined && options.difference !== 'central' && options.difference !== 'forward')
    throw new TypeError(`difference: expected "central" or "forward", got ${JSON.stringify(options.difference)}`);
  if (!Number.isInteger(probes) || probes < 1) throw new RangeError(`probes: expected an integer >= 1, got ${probes}`);
  if (!(eps > 0 && Number.isFinite(eps))) throw new RangeError(`eps: expected a finite number > 0, got ${eps}`);
  if (!Number.isInteger(options.step) || options.step < 0) throw new RangeError(`step: expected an integer >= 0, got ${options.step}`);
  const minT = options.minT ?? 0;
  if (!Number.isInteger(minT) || minT < 0 || minT >= schedule.steps)
    throw new RangeError(`minT: expected an integer in [0, ${schedule.steps}), got ${minT}`);
  const maxT = options.maxT ?? schedule.steps;
  if (!Number.isInteger(maxT) || maxT <= minT || maxT > schedule.steps)
    throw new RangeError(`maxT: expected an integer in (minT = ${minT}, ${schedule.steps}], got ${maxT}`);
  const first = minValidStep(schedule, batch.vMax);
  if (minT < first)
    throw new RangeError(
      `gsure: the measurements hold noise of variance up to vMax = ${batch.vMax}, more than steps t < ${first} add ` +
        `(D = (1 - alphaBar) - alphaBar * v would be negative). Choose the schedule's beta1 >= vMax / (1 + vMax) = ` +
        `${(batch.vMax / (1 + batch.vMax)).toPrecision(4)} (beta1 = sigma0^2 for masks, as the official configurations do), ` +
        `or restrict t with minT: ${first}`,
    );

  const { ybar } = batch;
  const n = ybar.shape[0]!;
  const per = ybar.numel / n;
  const { t, noiseKey, probeKey } = gsureDraws(n, per, probes, { schedule, seed: options.seed, step: options.step, minT, maxT });
  const alphaBar = Float64Array.from(t, (s) => schedule.alphaBars[s]!);
  const kappa = divergenceCoefficients(variant, alphaBar, { sigma0: batch.sigma0, lambda: options.lambda });

  const device = ybar.device;
  const owned: Tensor[] = [];
  const own = <T extends Tensor | undefined>(x: T): T => {
    if (x) owned.push(x);
    return x;
  };
  const tapes: TapeT[] = [];
  try {
    const xbarT = own(svdNoise(ybar, batch.variance, alphaBar, batch.vMax, noiseKey));
    const { plus: xbarPlus, minus: xbarMinus } = gsureProbes(xbarT, { probes, eps, key: probeKey, central });
    own(xbarPlus);
    own(xbarMinus);
    const tTensor = own(tensor(Float32Array.from(t), [n], { device }));
    // One probe per sample: the probe rows have the samples' own time steps.
    const tProbe =
      probes === 1
        ? tTensor
        : own(
            tensor(
              Float32Array.from({ length: n * probes }, (_, r) => t[Math.floor(r / probes)]!),
              [n * probes],
              { device },
            ),
          );
    // Network passes in pixel space: x = V x̄; outputs back to the SVD domain: h̄ = Vᵀ h.
    const pass = async (xbar: Tensor, tt: Tensor) => {
      const x = await apply(batch.basis?.v.bind(batch.basis), xbar);
      if (x !== xbar) own(x);
      const { out, tape } = model.forward(x, tt);
      own(out);
      tapes.push(tape);
      const hbar = await apply(batch.basis?.vt.bind(batch.basis), out);
      if (hbar !== out) own(hbar);
      return { hbar, tape };
    };
    const base = await pass(xbarT, tTensor);
    const plus = await pass(xbarPlus, tProbe);
    const minus = xbarMinus ? await pass(xbarMinus, tProbe) : undefined;
    const terms = gsureTerms({
      h: base.hbar,
      plus: plus.hbar,
      minus: minus?.hbar,
      ybar,
      weight: batch.weight,
      variance: batch.variance,
      kappa,
      probes,
      eps,
      key: probeKey,
      gradScale: 1 / n,
    });
    own(terms.gradH);
    own(terms.gradPlus);
    own(terms.gradMinus);
    // dL/dh = V dL/dh̄ (h̄ = Vᵀ h with V orthogonal).
    const backward = async (tape: TapeT, g: Tensor) => {
      const gout = await apply(batch.basis?.v.bind(batch.basis), g);
      if (gout !== g) own(gout);
      model.backward(tape, gout);
    };
    await backward(base.tape, terms.gradH);
    await backward(plus.tape, terms.gradPlus);
    if (minus) await backward(minus.tape, terms.gradMinus!);
    const parts = terms.parts;
    const values = parts.toArray().then((p) => {
      parts.dispose();
      const fit = new Float64Array(n);
      const divergence = new Float64Array(n);
      for (let b = 0; b < n; b++) {
        fit[b] = p[2 * b]!;
        divergence[b] = p[2 * b + 1]!;
      }
      const mean = (a: Float64Array) => a.reduce((s, x) => s + x, 0) / n;
      return { loss: mean(fit) + mean(divergence), fit: mean(fit), divergence: mean(divergence), perSample: { fit, divergence } };
    });
    return { t, alphaBar, values };
  } finally {
    for (const tape of tapes) tape.release();
    for (const x of owned) x.dispose(); // queued work keeps what it still needs
  }
}
