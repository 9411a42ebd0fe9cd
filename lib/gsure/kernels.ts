// Typed wrappers of the fused GSURE kernels (native/include/kintsugi/gsure.h; docs/gsure.md). All
// tensors are in the SVD domain of the degradation, x̄ = Vᵀx, with the encodings
//   variance v = P σ0² / s²  (0 where unobserved),  weight c = P w² with w² = 1 / E[P]  (0 where unobserved),
// each [N, ...] like ȳ, or one sample's worth ([1, ...]) shared by the whole batch (a fixed mask).
import { native } from '../native.ts';
import type { RngKey } from '../random.ts';
import type { NoiseSchedule } from '../schedule.ts';
import { disposeOnThrow, empty, into, type Tensor } from '../tensor.ts';

/**
 * x̄_t = √ᾱ_b ȳ + D^{1/2} ε with D_i = (1 − ᾱ_b) − ᾱ_b v_i, so x̄_t | x̄ ~ N(√ᾱ P x̄, (1 − ᾱ) I) on every
 * coordinate. ε is randn's draw of `key` over ȳ's shape (randn with the same key reproduces it).
 * `vMax` bounds v (σ0² / smallest nonzero s², σ0² for masks): a step whose D would be negative is a
 * TypeError naming both remedies (β_1 ≥ vMax / (1 + vMax), or a later first step; see minValidStep).
 */
export function svdNoise(ybar: Tensor, variance: Tensor, alphaBar: ArrayLike<number>, vMax: number, key: RngKey): Tensor {
  return into(ybar.device, ybar.shape, (out) =>
    native.svdNoise(ybar.handle('ybar'), variance.handle('variance'), alphaBar, vMax, key.seed, key.offset, key.stream, out),
  );
}

/**
 * The Hutchinson probe shifts x̄_t + eps b (and x̄_t − eps b for central differences) as [N * probes, ...]
 * tensors, row b * probes + k holding probe k of sample b; b is randn's draw of `key` over that shape.
 */
export function gsureProbes(
  xt: Tensor,
  options: { probes: number; eps: number; key: RngKey; central: boolean },
): { plus: Tensor; minus?: Tensor } {
  const shape = [xt.shape[0]! * options.probes, ...xt.shape.slice(1)];
  if (!Number.isInteger(options.probes) || options.probes < 1)
    throw new RangeError(`probes: expected an integer >= 1, got ${options.probes}`);
  const plus = empty(shape, { device: xt.device });
  const minus = options.central ? empty(shape, { device: xt.device }) : undefined;
  return disposeOnThrow([plus, minus], () => {
    const { key } = options;
    native.gsureProbe(
      xt.handle('xt'),
      options.probes,
      options.eps,
      key.seed,
      key.offset,
      key.stream,
      plus.handle(),
      minus?.handle() ?? null,
    );
    return { plus, minus };
  });
}

export interface GsureTermsInputs {
  /** h̄ = Vᵀ h(x_t), [N, ...]. */
  h: Tensor;
  /** h̄ at x̄_t + eps b, [N * probes, ...]. */
  plus: Tensor;
  /** h̄ at x̄_t − eps b (central differences); absent: forward differences. */
  minus?: Tensor;
  ybar: Tensor;
  weight: Tensor;
  variance: Tensor;
  /** κ_b per sample: 2√ᾱ_b for the unbiased loss (see divergenceCoefficients). */
  kappa: ArrayLike<number>;
  probes: number;
  /** The finite-difference step the probes were made with. */
  eps: number;
  /** The key the probes were drawn from. */
  key: RngKey;
  /** Gradients are of gradScale · Σ_b (fit_b + div_b); default 1 / N (the batch mean). */
  gradScale?: number;
}

export interface GsureTermsOutputs {
  /** [N, 2]: fit_b = (1/n) Σ c (h̄ − ȳ)², div_b = (κ_b / n) · the Hutchinson estimate of Σ c v ∂h̄_i/∂x̄_i. */
  parts: Tensor;
  gradH: Tensor;
  gradPlus: Tensor;
  gradMinus?: Tensor;
}

/** The GSURE loss parts and their gradients in one pass (docs/gsure.md). */
export function gsureTerms(a: GsureTermsInputs): GsureTermsOutputs {
  const n = a.h.shape[0]!;
  const device = a.h.device;
  const outs: Tensor[] = [];
  const make = (shape: readonly number[]) => {
    const t = empty(shape, { device });
    outs.push(t);
    return t;
  };
  return disposeOnThrow(outs, () => {
    const parts = make([n, 2]);
    const gradH = make(a.h.shape);
    const gradPlus = make(a.plus.shape);
    const gradMinus = a.minus ? make(a.plus.shape) : undefined;
    native.gsureTerms(
      a.h.handle('h'),
      a.plus.handle('plus'),
      a.minus?.handle('minus') ?? null,
      a.ybar.handle('ybar'),
      a.weight.handle('weight'),
      a.variance.handle('variance'),
      a.kappa,
      { probes: a.probes, eps: a.eps, gradScale: a.gradScale ?? 1 / n, seed: a.key.seed, offset: a.key.offset, stream: a.key.stream },
      parts.handle(),
      gradH.handle(),
      gradPlus.handle(),
      gradMinus?.handle() ?? null,
    );
    return { parts, gradH, gradPlus, gradMinus };
  });
}

export type GsureVariant = 'unbiased' | 'official';

/** The released code's divergence scale Λ (docs/methods.md §2). */
export const OFFICIAL_LAMBDA = 1e-4;

/**
 * κ_b per sample. 'unbiased': 2√ᾱ_b, so κ_b v_i = 2√ᾱ_b σ0² / s_i² (Stein's lemma on the measurement
 * noise). 'official': the released code's 2(1 − ᾱ_b) Λ in place of 2√ᾱ_b σ0²; with our v = σ0² / s²
 * that is κ_b = 2(1 − ᾱ_b) Λ / σ0² (for masks, s = 1, κ_b v_i = 2(1 − ᾱ_b) Λ exactly as released), so
 * it needs σ0 > 0 (per sample or one value).
 */
export function divergenceCoefficients(
  variant: GsureVariant,
  alphaBar: ArrayLike<number>,
  options: { sigma0?: number | ArrayLike<number>; lambda?: number } = {},
): Float64Array {
  if (variant === 'unbiased') return Float64Array.from(alphaBar, (a) => 2 * Math.sqrt(a));
  if (variant !== 'official') throw new TypeError(`variant: expected "unbiased" or "official", got ${JSON.stringify(variant)}`);
  const lambda = options.lambda ?? OFFICIAL_LAMBDA;
  const s0 = options.sigma0;
  const sigma = (b: number) => (typeof s0 === 'number' ? s0 : s0?.[b]);
  return Float64Array.from(alphaBar, (a, b) => {
    const s = sigma(b);
    if (s === undefined || !(s > 0))
      throw new TypeError(
        `sigma0: the 'official' variant needs sigma0 > 0 (its coefficient is divided by sigma0^2), got ${s} for sample ${b}`,
      );
    return (2 * (1 - a) * lambda) / (s * s);
  });
}

/**
 * The first step t at which SVD-domain noising is possible for variances up to vMax: ᾱ_t ≤ 1 / (1 + vMax),
 * i.e. D ≥ 0 on every coordinate. 0 when the schedule's β_1 ≥ vMax / (1 + vMax).
 */
export function minValidStep(schedule: NoiseSchedule, vMax: number): number {
  if (!(vMax >= 0 && Number.isFinite(vMax))) throw new RangeError(`vMax: expected a finite number >= 0, got ${vMax}`);
  const ab = schedule.alphaBars;
  for (let t = 0; t < ab.length; t++) if (1 - ab[t]! - ab[t]! * vMax >= 0) return t;
  return ab.length;
}
