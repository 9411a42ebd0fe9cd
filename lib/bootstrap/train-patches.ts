// Training a patch model with position channels (docs/bootstrap.md): ordinary denoising score matching
// on crops, with the crop's two position channels (each pixel's row and column in the whole image, on
// [-1, 1], as patch_extract writes them) appended to x_t as conditions, never noised. Without position
// channels a patch model is trained by plain train() on the crops. Random choices as in lib/train.ts:
// Philox streams keyed by (seed, step), so a resumed run repeats the uninterrupted one.
import { native } from '../native.ts';
import { combine, NoiseSchedule, targetOf, type Prediction } from '../schedule.ts';
import { tensor, zeros } from '../tensor.ts';
import { noisedBatch } from '../train.ts';
import { trainingLoop, type LoopOptions, type TrainResult } from '../training-loop.ts';
import type { CropDataset } from './data.ts';
import { concatChannels } from './views.ts';

export interface PatchTrainOptions extends LoopOptions {
  /** Crops with their offsets (cropDataset). */
  crops: CropDataset;
  schedule?: NoiseSchedule;
  prediction?: Prediction;
  seed?: bigint | number;
}

/** The position value of pixel y of an image `extent` pixels high: kintsugi/patch_grid.h's patch_position. */
export function patchPosition(y: number, extent: number): number {
  return extent > 1 ? (2 * y) / (extent - 1) - 1 : 0;
}

export async function trainPatchModel(options: PatchTrainOptions): Promise<TrainResult> {
  const { model, crops, batchSize } = options;
  const [N, C, P, P2] = crops.shape;
  const cfg = model.config;
  if (P !== P2 || cfg.resolution !== P || cfg.inChannels !== C + 2 || cfg.outChannels !== C)
    throw new TypeError(
      `trainPatchModel: crops of shape [N, ${C}, ${P}, ${P2}] need a square model with inChannels ${C + 2} (the image and two position channels), ` +
        `outChannels ${C}, resolution ${P}; got inChannels ${cfg.inChannels}, outChannels ${cfg.outChannels}, resolution ${cfg.resolution}`,
    );
  if (crops.images.length !== N * C * P * P)
    throw new TypeError(`trainPatchModel: crops.images has ${crops.images.length} values, shape needs ${N * C * P * P}`);
  if (crops.offsets.length !== 2 * N)
    throw new TypeError(`trainPatchModel: crops.offsets needs ${2 * N} values (row, column per crop), got ${crops.offsets.length}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`trainPatchModel: batchSize must be a positive integer, got ${batchSize}`);
  const schedule = options.schedule ?? new NoiseSchedule({ kind: 'linear' });
  const prediction = options.prediction ?? 'eps';
  const seed = BigInt(options.seed ?? 0);
  const device = model.device;
  const [H, W] = crops.imageSize;
  const per = C * P * P;
  const host = new Float32Array(batchSize * per);
  const pos = new Float32Array(batchSize * 2 * P * P);
  const scale = 2 / (batchSize * per);

  return trainingLoop(options, { prediction, schedule: schedule.toJSON() }, (step) => {
    const { indices, ts, ab, x0, eps, xt } = noisedBatch(crops.images, N, [C, P, P], { schedule, seed, step, batchSize, device, host });
    for (let b = 0; b < batchSize; b++) {
      const k = indices[b]!;
      const [oy, ox] = [crops.offsets[2 * k]!, crops.offsets[2 * k + 1]!];
      for (let u = 0; u < P; u++)
        for (let v = 0; v < P; v++) {
          pos[(b * 2 * P + u) * P + v] = patchPosition(oy + u, H);
          pos[((b * 2 + 1) * P + u) * P + v] = patchPosition(ox + v, W);
        }
    }
    const where = tensor(pos, [batchSize, 2, P, P], { device });
    const input = concatChannels(xt, where);
    const target = targetOf(prediction, x0, eps, ab);
    const t = tensor(Float32Array.from(ts), [batchSize], { device });
    const { out, tape } = model.forward(input, t);
    const gout = combine([
      [out, new Array(batchSize).fill(scale)],
      [target, new Array(batchSize).fill(-scale)],
    ]);
    const sumsq = zeros([1], { device });
    native.sumSquares(gout.handle(), sumsq.handle());
    model.backward(tape, gout);
    tape.release();
    for (const u of [x0, where, eps, xt, input, target, t, out, gout]) u.dispose();
    const loss = sumsq.toArray().then((v) => {
      sumsq.dispose();
      return v[0]! / (scale * scale * batchSize * per);
    });
    return { loss };
  });
}
