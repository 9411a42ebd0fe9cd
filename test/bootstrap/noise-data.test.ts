// Noise-level matching and the derived view data sets: the matched level has r² times the SNR, its
// time inverts the schedule's interpolation, the pooled view of x_t rescaled really has the model's
// signal and noise levels (measured), and the data sets are the pooled copies and in-bounds crops.
import { describe, expect, it } from 'vitest';
import { Generator, NoiseSchedule, randn } from '../../lib/index.ts';
import { alphaBarAt, matchPooledLevel, timeAtLogSnr } from '../../lib/bootstrap/noise-level.ts';
import { cropDataset, lowresDataset } from '../../lib/bootstrap/data.ts';
import { avgPool } from '../../lib/bootstrap/views.ts';
import { refPool } from '../reference/bootstrap.ts';
import { testValues } from '../helpers.ts';

const snr = (a: number) => a / (1 - a);

describe('noise-level matching', () => {
  for (const kind of ['linear', 'cosine'] as const) {
    const schedule = new NoiseSchedule({ kind });
    it(`${kind}: ᾱ' has r² times the SNR, and alphaBarAt(t') gives ᾱ' back`, () => {
      for (const r of [2, 4])
        for (const t of [40, 200, 500, 999]) {
          const ab = schedule.alphaBars[t]!;
          const m = matchPooledLevel(schedule, ab, r);
          expect(m.clamped).toBe(false);
          expect(snr(m.alphaBar) / snr(ab)).toBeCloseTo(r * r, 9);
          expect(m.time).toBeLessThan(t);
          expect(alphaBarAt(schedule, m.time)).toBeCloseTo(m.alphaBar, 12);
          expect(m.scale).toBeCloseTo(Math.sqrt(m.alphaBar / ab), 12);
        }
    });
  }

  it('integer times give the schedule, and the ends clamp', () => {
    const schedule = new NoiseSchedule({ kind: 'linear' });
    expect(alphaBarAt(schedule, 417)).toBe(schedule.alphaBars[417]);
    expect(timeAtLogSnr(schedule, Math.log(snr(schedule.alphaBars[417]!))).time).toBeCloseTo(417, 9);
    const m = matchPooledLevel(schedule, schedule.alphaBars[2]!, 4); // 16 x the SNR of step 2: beyond step 0
    expect(m).toMatchObject({ time: 0, clamped: true, alphaBar: schedule.alphaBars[0] });
    expect(() => alphaBarAt(schedule, 1000)).toThrow(/t: expected a time in \[0, 999\], got 1000/);
  });

  it("the rescaled pooled view of x_t has the signal √ᾱ' A x0 and the noise variance 1 − ᾱ' (measured)", async () => {
    const schedule = new NoiseSchedule({ kind: 'linear' });
    const ab = schedule.alphaBars[300]!;
    const r = 4;
    const m = matchPooledLevel(schedule, ab, r);
    const shape = [64, 1, 32, 32];
    // x0 = 0: the view is pure noise, c A (√(1−ᾱ) ε).
    const eps = randn(shape, { generator: new Generator(9), device: 'cpu' });
    const v = await avgPool(eps, r).toArray();
    const variance = (v.reduce((s, x) => s + x * x, 0) / v.length) * m.scale ** 2 * (1 - ab);
    expect(variance / (1 - m.alphaBar)).toBeGreaterThan(0.95); // 4096 values: ±4.4% at 2 sigma
    expect(variance / (1 - m.alphaBar)).toBeLessThan(1.05);
    expect(m.scale * Math.sqrt(ab)).toBeCloseTo(Math.sqrt(m.alphaBar), 12);
    eps.dispose();
  });
});

describe('view data sets', () => {
  it('lowresDataset pools every image (in chunks)', async () => {
    const images = testValues(3 * 2 * 8 * 8, 77);
    const low = await lowresDataset({ images, shape: [3, 2, 8, 8] }, 4, { device: 'cpu' });
    expect(low.shape).toEqual([3, 2, 2, 2]);
    const want = refPool(images, [3, 2, 8, 8], 4);
    low.images.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    await expect(lowresDataset({ images, shape: [3, 2, 8, 8] }, 3)).rejects.toThrow(/r must be a positive integer dividing 8x8, got 3/);
  });

  it('cropDataset cuts in-bounds crops, the same for the same seed', () => {
    // Pixel values encode (image, channel, y, x), so every crop can be traced back.
    const [N, C, H, W] = [4, 2, 9, 7];
    const images = Float32Array.from({ length: N * C * H * W }, (_, i) => i);
    const crops = cropDataset({ images, shape: [N, C, H, W] }, { size: 5, count: 50, seed: 3 });
    expect(crops.shape).toEqual([50, C, 5, 5]);
    for (let k = 0; k < 50; k++) {
      const first = crops.images[k * C * 25]!;
      const [b, c, y, x] = [Math.floor(first / (C * H * W)), Math.floor(first / (H * W)) % C, Math.floor(first / W) % H, first % W];
      expect(c).toBe(0);
      expect(y + 5).toBeLessThanOrEqual(H);
      expect(x + 5).toBeLessThanOrEqual(W);
      for (let ch = 0; ch < C; ch++)
        for (let u = 0; u < 5; u++)
          for (let v = 0; v < 5; v++) expect(crops.images[((k * C + ch) * 5 + u) * 5 + v]).toBe(((b * C + ch) * H + y + u) * W + x + v);
    }
    expect(cropDataset({ images, shape: [N, C, H, W] }, { size: 5, count: 50, seed: 3 }).images).toEqual(crops.images);
    expect(() => cropDataset({ images, shape: [N, C, H, W] }, { size: 8, count: 1 })).toThrow(/size must be an integer in \[1, 7\], got 8/);
  });
});
