// Peak signal-to-noise ratio of reconstructions against their originals, per image:
//
//   PSNR = 10 log10(L^2 / MSE),  MSE = the mean of (x - y)^2 over all C x H x W values of the image,
//
// with L the data range: 2 for the library's images in [-1, 1] (the default), 1 for [0, 1], 255 for
// 8-bit values. Identical images give +Infinity. `mean` averages the per-image values (in dB).
import { hostBatch, type SampleBatch } from './batch.ts';

export interface ImageMetricOptions {
  /** max - min of the value range (default 2: images in [-1, 1]). */
  dataRange?: number;
}

export interface ImageMetric {
  /** The mean over images of the per-image values. */
  mean: number;
  /** One value per image. */
  perImage: Float64Array;
}

/** The values of two image batches [N, C, H, W] of the same shape, and the data range, checked. */
export async function imagePair(a: SampleBatch, b: SampleBatch, options: ImageMetricOptions) {
  const dataRange = options.dataRange ?? 2;
  if (!(typeof dataRange === 'number' && Number.isFinite(dataRange) && dataRange > 0))
    throw new RangeError(`options.dataRange: expected a finite number > 0, got ${JSON.stringify(dataRange)}`);
  const [x, y] = [await hostBatch(a, 'a', 4), await hostBatch(b, 'b', 4)];
  if (x.shape.some((d, i) => d !== y.shape[i]))
    throw new RangeError(`b: expected the shape of a ${JSON.stringify(x.shape)}, got ${JSON.stringify(y.shape)}`);
  return { x, y, dataRange };
}

/** PSNR in dB of each image of `a` [N, C, H, W] against the same image of `b`. */
export async function psnr(a: SampleBatch, b: SampleBatch, options: ImageMetricOptions = {}): Promise<ImageMetric> {
  const { x, y, dataRange } = await imagePair(a, b, options);
  const perImage = new Float64Array(x.n);
  for (let i = 0; i < x.n; i++) {
    let s = 0;
    for (let k = i * x.size; k < (i + 1) * x.size; k++) s += (x.data[k]! - y.data[k]!) ** 2;
    perImage[i] = 10 * Math.log10((dataRange * dataRange) / (s / x.size));
  }
  return { mean: perImage.reduce((p, v) => p + v, 0) / x.n, perImage };
}
