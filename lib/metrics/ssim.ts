// Structural similarity (Wang, Bovik, Sheikh and Simoncelli, IEEE TIP 2004), per image:
//
//   SSIM(x, y) = mean over window positions p of
//                (2 mu_x mu_y + C1) (2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (s_x^2 + s_y^2 + C2)),
//
// where mu, s^2 and s_xy are the local means, variances and covariance under an 11x11 Gaussian window
// (sigma 1.5, weights normalised to sum 1; variances are E_w[x^2] - mu^2, the paper's weighted
// estimator), C1 = (0.01 L)^2, C2 = (0.03 L)^2, and L the data range (default 2 for images in [-1, 1]).
// The window is placed only where it fits inside the image ("valid", as the paper's reference code
// filters), so H and W must be at least 11; no downsampling is applied. Channels are computed separately
// and averaged; `mean` averages over images.
import type { SampleBatch } from './batch.ts';
import { imagePair, type ImageMetric, type ImageMetricOptions } from './psnr.ts';

const WINDOW = 11;
const SIGMA = 1.5;
const K1 = 0.01;
const K2 = 0.03;

/** The normalised 1-D Gaussian; the 2-D window is its outer product with itself (separable). */
function gaussianWindow(): Float64Array {
  const g = Float64Array.from({ length: WINDOW }, (_, i) => Math.exp(-((i - (WINDOW - 1) / 2) ** 2) / (2 * SIGMA * SIGMA)));
  const sum = g.reduce((a, b) => a + b, 0);
  return g.map((v) => v / sum);
}

/** Valid-mode separable filtering of one h x w plane with the window: (h - 10) x (w - 10) values. */
function filter(plane: Float64Array, h: number, w: number, g: Float64Array): Float64Array {
  const [ho, wo] = [h - WINDOW + 1, w - WINDOW + 1];
  const rows = new Float64Array(h * wo);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < wo; x++) {
      let acc = 0;
      for (let k = 0; k < WINDOW; k++) acc += g[k]! * plane[y * w + x + k]!;
      rows[y * wo + x] = acc;
    }
  const out = new Float64Array(ho * wo);
  for (let y = 0; y < ho; y++)
    for (let x = 0; x < wo; x++) {
      let acc = 0;
      for (let k = 0; k < WINDOW; k++) acc += g[k]! * rows[(y + k) * wo + x]!;
      out[y * wo + x] = acc;
    }
  return out;
}

/** SSIM of each image of `a` [N, C, H, W] against the same image of `b` (H, W >= 11). */
export async function ssim(a: SampleBatch, b: SampleBatch, options: ImageMetricOptions = {}): Promise<ImageMetric> {
  const { x, y, dataRange } = await imagePair(a, b, options);
  const [, c, h, w] = x.shape as [number, number, number, number];
  if (h < WINDOW || w < WINDOW)
    throw new RangeError(`a: SSIM's ${WINDOW}x${WINDOW} window needs images of at least ${WINDOW}x${WINDOW}, got ${h}x${w}`);
  const g = gaussianWindow();
  const [c1, c2] = [(K1 * dataRange) ** 2, (K2 * dataRange) ** 2];
  const hw = h * w;
  const perImage = new Float64Array(x.n);
  const [px, py, pxx, pyy, pxy] = Array.from({ length: 5 }, () => new Float64Array(hw));
  for (let i = 0; i < x.n; i++) {
    let sum = 0;
    for (let ch = 0; ch < c; ch++) {
      const base = (i * c + ch) * hw;
      for (let p = 0; p < hw; p++) {
        const [u, v] = [x.data[base + p]!, y.data[base + p]!];
        [px[p], py[p], pxx[p], pyy[p], pxy[p]] = [u, v, u * u, v * v, u * v];
      }
      const [mx, my, exx, eyy, exy] = [px, py, pxx, pyy, pxy].map((plane) => filter(plane!, h, w, g)) as Float64Array[];
      let s = 0;
      for (let p = 0; p < mx!.length; p++) {
        const [ux, uy] = [mx![p]!, my![p]!];
        const [vx, vy, cxy] = [exx![p]! - ux * ux, eyy![p]! - uy * uy, exy![p]! - ux * uy];
        s += ((2 * ux * uy + c1) * (2 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
      }
      sum += s / mx!.length;
    }
    perImage[i] = sum / c;
  }
  return { mean: perImage.reduce((p, v) => p + v, 0) / x.n, perImage };
}
