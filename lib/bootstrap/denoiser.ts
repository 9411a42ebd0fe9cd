// The bootstrapped denoiser (docs/bootstrap.md): frozen per-view denoisers aggregated into x̂_agg,
// plus a residual denoiser f0 trained on the few full-resolution images:
//   D(x_t, t) = x̂_agg + f0(x_t, t, x̂_agg),  x̂_agg = U f_lr(A x_t) + H Σ_j P_jᵀ (W_j ⊙ f_patch(P_j x_t)).
// Everything is in x0-prediction; the view models may predict eps, x0 or v (converted here), and the
// result is a `Denoiser` of any prediction kind, so every sampler of lib/sample.ts can use it.
import { combine, splitPrediction, type NoiseSchedule, type Prediction } from '../schedule.ts';
import type { Denoiser } from '../sample.ts';
import type { Tensor } from '../tensor.ts';
import { alphaBarAt, matchPooledLevel } from './noise-level.ts';
import { aggregate, avgPool, concatChannels, extractPatches, patchCount, type PatchWindow } from './views.ts';

/** A frozen view model: a denoiser of the view's own data at its own resolution. */
export interface ViewModel {
  denoiser: Denoiser;
  /** What it predicts (what it was trained to predict). */
  prediction: Prediction;
}

export interface LowresViewModel extends ViewModel {
  /** r: the model denoises r×r-pooled images. */
  factor: number;
}

export interface PatchViewModel extends ViewModel {
  size: number;
  stride: number;
  /** Overlap-add window (default "hann"). */
  window?: PatchWindow;
  /** The model's input has the two position channels (inChannels = C + 2). */
  positions?: boolean;
}

export interface BootstrapViews {
  /** The schedule of the full-resolution diffusion; the view models were trained with the same one. */
  schedule: NoiseSchedule;
  lowres?: LowresViewModel;
  patch?: PatchViewModel;
}

export interface ResidualModel {
  /** f0, predicting the x0 residual D − x̂_agg. */
  denoiser: Denoiser;
  /**
   * True (default): f0 sees concat(x_t, x̂_agg) (inChannels = 2C). False: f0 sees x_t alone, runs before
   * the aggregation, and D = x̂_agg + f0 comes out of the aggregation kernel in the same pass.
   */
  conditioned?: boolean;
}

function checkViews(views: BootstrapViews): void {
  if (!views.lowres && !views.patch) throw new TypeError('views: needs a lowres or a patch view model (or both), got neither');
  const r = views.lowres?.factor;
  if (r !== undefined && !(Number.isInteger(r) && r >= 1))
    throw new RangeError(`views.lowres.factor: expected a positive integer, got ${r}`);
}

/** Per-sample ᾱ at the (possibly continuous) times t. */
const alphaBars = (schedule: NoiseSchedule, t: Float32Array) => Array.from(t, (ti) => alphaBarAt(schedule, ti));

/** x0 from a prediction of kind `kind` at input x and level ᾱ (pred itself when it already is x0; consumes pred). */
function toX0(kind: Prediction, x: Tensor, pred: Tensor, ab: number[]): Tensor {
  if (kind === 'x0') return pred;
  const { x0, eps } = splitPrediction(kind, x, pred, ab);
  eps.dispose();
  pred.dispose();
  return x0;
}

/** The low-resolution view's x0 estimate [n, c, h/r, w/r] at x_t, queried at the matched noise level. */
function lowresEstimate(views: BootstrapViews, xt: Tensor, ab: number[]): Tensor {
  const v = views.lowres!;
  const levels = ab.map((a) => matchPooledLevel(views.schedule, a, v.factor));
  const pooled = avgPool(xt, v.factor);
  const input = combine([[pooled, levels.map((l) => l.scale)]]);
  pooled.dispose();
  const pred = v.denoiser(
    input,
    Float32Array.from(levels, (l) => l.time),
  );
  const x0 = toX0(
    v.prediction,
    input,
    pred,
    levels.map((l) => l.alphaBar),
  );
  input.dispose();
  return x0;
}

/** The patch view's x0 estimates [n · J, c, P, P]: patches of x_t carry x_t's own noise level. */
function patchEstimate(views: BootstrapViews, xt: Tensor, t: Float32Array, ab: number[]): Tensor {
  const v = views.patch!;
  const J = patchCount(xt.shape[2]!, xt.shape[3]!, v.size, v.stride);
  const perPatch = <T>(a: ArrayLike<T>) => Array.from({ length: a.length * J }, (_, i) => a[Math.floor(i / J)]!);
  const input = extractPatches(xt, { size: v.size, stride: v.stride, positions: v.positions });
  const pred = v.denoiser(input, Float32Array.from(perPatch(t)));
  if (v.prediction === 'x0' || !v.positions) {
    const x0 = toX0(v.prediction, input, pred, perPatch(ab));
    input.dispose();
    return x0;
  }
  // The conversion needs the image channels of the patches only.
  input.dispose();
  const plain = extractPatches(xt, { size: v.size, stride: v.stride });
  const x0 = toX0(v.prediction, plain, pred, perPatch(ab));
  plain.dispose();
  return x0;
}

/**
 * x̂_agg at x_t [n, c, h, w] and per-sample times t, in x0 space (with `f0` [n, c, h, w], x̂_agg + f0 in
 * the same pass).
 */
export function aggregateEstimate(views: BootstrapViews, xt: Tensor, t: Float32Array, f0?: Tensor): Tensor {
  checkViews(views);
  if (xt.shape.length !== 4) throw new TypeError(`x: expected [n, c, h, w], got shape ${JSON.stringify(xt.shape)}`);
  if (t.length !== xt.shape[0]) throw new TypeError(`t: expected one time per sample (${xt.shape[0]}), got ${t.length}`);
  const ab = alphaBars(views.schedule, t);
  const lowres = views.lowres ? lowresEstimate(views, xt, ab) : undefined;
  let patches: Tensor | undefined;
  try {
    patches = views.patch ? patchEstimate(views, xt, t, ab) : undefined;
    return aggregate({
      shape: xt.shape as unknown as [number, number, number, number],
      lowres: lowres && { estimate: lowres, factor: views.lowres!.factor },
      patch: patches && { estimate: patches, stride: views.patch!.stride, window: views.patch!.window },
      f0,
    });
  } finally {
    lowres?.dispose();
    patches?.dispose();
  }
}

/** x0 -> the prediction of kind `kind` at x_t (eps = (x_t − √ᾱ x0)/√(1−ᾱ), v = √ᾱ eps − √(1−ᾱ) x0). */
function fromX0(kind: Prediction, xt: Tensor, x0: Tensor, ab: number[]): Tensor {
  if (kind === 'x0') return x0;
  const out =
    kind === 'eps'
      ? combine([
          [xt, ab.map((a) => 1 / Math.sqrt(1 - a))],
          [x0, ab.map((a) => -Math.sqrt(a) / Math.sqrt(1 - a))],
        ])
      : // v = √ᾱ (x_t − √ᾱ x0)/√(1−ᾱ) − √(1−ᾱ) x0 = √ᾱ/√(1−ᾱ) x_t − x0/√(1−ᾱ)
        combine([
          [xt, ab.map((a) => Math.sqrt(a) / Math.sqrt(1 - a))],
          [x0, ab.map((a) => -1 / Math.sqrt(1 - a))],
        ]);
  x0.dispose();
  return out;
}

/**
 * D(x_t, t) = x̂_agg + f0 as a `Denoiser` predicting `prediction` (default "x0"; pass the same kind to
 * sample()). Without a residual model it is x̂_agg alone (the views-only baseline).
 */
export function bootstrapDenoiser(views: BootstrapViews, residual?: ResidualModel, options: { prediction?: Prediction } = {}): Denoiser {
  checkViews(views);
  const kind = options.prediction ?? 'x0';
  return (xt, t) => {
    const ab = alphaBars(views.schedule, t);
    let x0: Tensor;
    if (!residual) {
      x0 = aggregateEstimate(views, xt, t);
    } else if (residual.conditioned === false) {
      const f0 = residual.denoiser(xt, t);
      x0 = aggregateEstimate(views, xt, t, f0);
      f0.dispose();
    } else {
      const agg = aggregateEstimate(views, xt, t);
      const input = concatChannels(xt, agg);
      const f0 = residual.denoiser(input, t);
      input.dispose();
      x0 = agg.add(f0);
      agg.dispose();
      f0.dispose();
    }
    return fromX0(kind, xt, x0, ab);
  };
}
