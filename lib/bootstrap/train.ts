// Residual training of bootstrapping diffusion (docs/bootstrap.md): the view models are frozen, and
// f0 learns, on the few full-resolution images, the correction of their aggregate:
//   L = ‖x̂_agg + f0(x_t, t, x̂_agg) − x0‖² + λ ‖f0‖²          (penalty "l2"; optimum (E[x0|x_t] − x̂_agg)/(1+λ))
//   L = ‖x̂_agg + f0 − x0‖² + λ Σ_b ‖f0_b − mean_b' f0_b'‖²   (penalty "batch-variance")
// both as per-element means over the batch. Every random choice of step s comes from Philox streams
// keyed by (seed, s), as in lib/train.ts, so a resumed run repeats the uninterrupted one.
import { native } from '../native.ts';
import { combine, NoiseSchedule } from '../schedule.ts';
import { tensor, zeros, type Tensor } from '../tensor.ts';
import { noisedBatch, type Dataset } from '../train.ts';
import { trainingLoop, type LoopOptions, type TrainResult } from '../training-loop.ts';
import { aggregateEstimate, type BootstrapViews } from './denoiser.ts';
import { bootstrapNative } from './native.ts';
import { concatChannels } from './views.ts';

export type ResidualPenalty = 'l2' | 'batch-variance';

export interface ResidualTrainOptions extends LoopOptions {
  /** The frozen view models (and the schedule). */
  views: BootstrapViews;
  /** The few full-resolution images. */
  data: Dataset;
  /** Penalty weight λ (default 0.1). */
  lambda?: number;
  penalty?: ResidualPenalty;
  /** f0 sees concat(x_t, x̂_agg) (default true; the model needs inChannels = 2C) or x_t alone (C). */
  conditioned?: boolean;
  seed?: bigint | number;
}

/**
 * The loss of one batch and its gradient with respect to f0's output (gradient of the batch mean), for
 * f0's output `out`, the aggregate `agg` and the clean images `x0` (all [B, ...]). `loss` resolves once
 * the device has computed it; the caller disposes `gout`.
 */
export function residualLoss(
  out: Tensor,
  agg: Tensor,
  x0: Tensor,
  options: { lambda: number; penalty?: ResidualPenalty },
): { gout: Tensor; loss: Promise<number> } {
  const { lambda } = options;
  const penalty = options.penalty ?? 'l2';
  if (!(lambda >= 0 && Number.isFinite(lambda))) throw new RangeError(`lambda: expected a finite number >= 0, got ${lambda}`);
  if (penalty !== 'l2' && penalty !== 'batch-variance')
    throw new TypeError(`penalty: expected "l2" or "batch-variance", got ${JSON.stringify(penalty)}`);
  const B = out.shape[0]!;
  const count = out.numel;
  const s = 2 / count; // d/dout of the mean over all elements of the batch
  const same = (v: number) => new Array<number>(B).fill(v);
  const err = combine([
    [out, same(1)],
    [agg, same(1)],
    [x0, same(-1)],
  ]);
  let pen = out;
  if (penalty === 'batch-variance') {
    pen = out.clone();
    bootstrapNative.batchCenter(out.handle('out'), pen.handle());
  }
  const gout = combine([
    [err, same(s)],
    [pen, same(s * lambda)],
  ]);
  const sse = zeros([1], { device: out.device });
  const spen = zeros([1], { device: out.device });
  native.sumSquares(err.handle(), sse.handle());
  native.sumSquares(pen.handle(), spen.handle());
  err.dispose();
  if (pen !== out) pen.dispose();
  const loss = Promise.all([sse.toArray(), spen.toArray()]).then(([a, b]) => {
    sse.dispose();
    spen.dispose();
    return (a[0]! + lambda * b[0]!) / count;
  });
  return { gout, loss };
}

/** Trains the residual denoiser `model` (f0) with the views frozen; the shared loop of training-loop.ts. */
export async function trainResidual(options: ResidualTrainOptions): Promise<TrainResult> {
  const { model, data, batchSize, views } = options;
  const [N, C, H, W] = data.shape;
  const cfg = model.config;
  const conditioned = options.conditioned ?? true;
  const lambda = options.lambda ?? 0.1;
  const penalty = options.penalty ?? 'l2';
  const inC = conditioned ? 2 * C : C;
  if (H !== cfg.resolution || W !== cfg.resolution || cfg.inChannels !== inC || cfg.outChannels !== C)
    throw new TypeError(
      `trainResidual: data of shape [N, ${C}, ${H}, ${W}] needs a model with inChannels ${inC} (${conditioned ? 'x_t and x̂_agg' : 'x_t'}), ` +
        `outChannels ${C}, resolution ${H}; got inChannels ${cfg.inChannels}, outChannels ${cfg.outChannels}, resolution ${cfg.resolution}`,
    );
  if (data.images.length !== N * C * H * W)
    throw new TypeError(`trainResidual: data.images has ${data.images.length} values, shape needs ${N * C * H * W}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`trainResidual: batchSize must be a positive integer, got ${batchSize}`);
  if (!(lambda >= 0 && Number.isFinite(lambda))) throw new RangeError(`trainResidual: lambda must be a finite number >= 0, got ${lambda}`);
  if (penalty === 'batch-variance' && batchSize < 2) throw new RangeError('trainResidual: the batch-variance penalty needs batchSize >= 2');
  const schedule: NoiseSchedule = views.schedule;
  const seed = BigInt(options.seed ?? 0);
  const device = model.device;
  const per = C * H * W;
  const host = new Float32Array(batchSize * per);

  return trainingLoop(options, { prediction: 'x0', schedule: schedule.toJSON() }, (step) => {
    const { ts, x0, eps, xt } = noisedBatch(data.images, N, [C, H, W], { schedule, seed, step, batchSize, device, host });
    const tHost = Float32Array.from(ts);
    const agg = aggregateEstimate(views, xt, tHost);
    const input = conditioned ? concatChannels(xt, agg) : xt;
    const t = tensor(tHost, [batchSize], { device });
    const { out, tape } = model.forward(input, t);
    const { gout, loss } = residualLoss(out, agg, x0, { lambda, penalty });
    model.backward(tape, gout);
    tape.release();
    for (const u of new Set([x0, eps, xt, agg, input, t, out, gout])) u.dispose();
    return { loss };
  });
}
