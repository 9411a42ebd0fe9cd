// Random masks, line masks and measurement noise: statistics within stated Monte-Carlo bounds, and
// reproducibility from the seed (the same seed gives the same values; sample i does not depend on how
// many samples were drawn).
import { describe, expect, it } from 'vitest';
import { BlockAverageOperator, measure, randn, randomFourier, randomLineMask, randomMask, randomPatchMask } from '../../lib/index.ts';
import { Generator } from '../../lib/random.ts';

describe('random patch and pixel masks', () => {
  it.each([
    [4, 0.4],
    [1, 0.2],
    [2, 0.6],
  ])('patch %i, p=%f: the fraction dropped is p within 5 standard errors; patches are whole', (patch, p) => {
    const n = 400;
    const m = randomPatchMask(n, [32, 32], { patch, p, seed: 11 });
    const patches = n * (32 / patch) ** 2;
    let dropped = 0;
    let split = 0; // pixels that differ from their patch's first pixel
    for (let i = 0; i < n; i++)
      for (let r = 0; r < 32; r += patch)
        for (let c = 0; c < 32; c += patch) {
          const v = m[i * 1024 + r * 32 + c]!;
          dropped += 1 - v;
          for (let a = 0; a < patch; a++) for (let b = 0; b < patch; b++) split += Number(m[i * 1024 + (r + a) * 32 + c + b] !== v);
        }
    expect(split).toBe(0);
    // Bernoulli(p) patches: the standard error of the fraction is sqrt(p (1 - p) / patches).
    expect(Math.abs(dropped / patches - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / patches));
  });

  it('p = 0 keeps everything, p = 1 drops everything', () => {
    expect(randomPatchMask(3, [8, 8], { p: 0, seed: 1 }).every((v) => v === 1)).toBe(true);
    expect(randomPatchMask(3, [8, 8], { p: 1, seed: 1 }).every((v) => v === 0)).toBe(true);
  });

  it('is reproducible from the seed, and sample i does not depend on the sample count', () => {
    const a = randomPatchMask(5, [16, 16], { patch: 4, p: 0.5, seed: 42 });
    expect(randomPatchMask(5, [16, 16], { patch: 4, p: 0.5, seed: 42 })).toEqual(a);
    expect(randomPatchMask(9, [16, 16], { patch: 4, p: 0.5, seed: 42 }).subarray(0, a.length)).toEqual(a);
    expect(randomPatchMask(5, [16, 16], { patch: 4, p: 0.5, seed: 43 })).not.toEqual(a);
    // Masks differ between samples (one shared mask would be a bug); 2^-16 chance per pair to collide.
    expect(a.subarray(0, 256)).not.toEqual(a.subarray(256, 512));
  });
});

describe('random k-space line masks', () => {
  it('keeps the centre lines, draws exactly randomLines others, each about equally often', () => {
    const n = 2000,
      H = 32,
      c = 6,
      r = 8;
    const m = randomLineMask(n, H, { centerLines: c, randomLines: r, seed: 5 });
    const centre = [0, 1, 2, 29, 30, 31]; // frequencies -3..2 in unshifted order
    const counts = new Float64Array(H);
    for (let i = 0; i < n; i++) {
      const row = m.subarray(i * H, (i + 1) * H);
      for (const k of centre) expect(row[k]).toBe(1);
      expect(row.reduce((a, b) => a + b, 0)).toBe(c + r);
      row.forEach((v, k) => (counts[k] += v));
    }
    // Each non-centre line is drawn with probability q = r / (H - c) per sample.
    const q = r / (H - c);
    for (let k = 3; k < 29; k++) expect(Math.abs(counts[k]! / n - q)).toBeLessThan(5 * Math.sqrt((q * (1 - q)) / n));
  });

  it('is reproducible from the seed', () => {
    const a = randomLineMask(4, 16, { centerLines: 4, randomLines: 4, seed: 9 });
    expect(randomLineMask(4, 16, { centerLines: 4, randomLines: 4, seed: 9 })).toEqual(a);
    expect(randomLineMask(7, 16, { centerLines: 4, randomLines: 4, seed: 9 }).subarray(0, 64)).toEqual(a);
    expect(randomLineMask(4, 16, { centerLines: 4, randomLines: 4, seed: 10 })).not.toEqual(a);
  });
});

describe('measure: y = Hx + sigma0 z', () => {
  it('noise has standard deviation sigma0 on observed coordinates and is 0 elsewhere; same seed, same y', async () => {
    const n = 64;
    using op = randomMask(n, [1, 16, 16], { patch: 4, p: 0.4, seed: 3, device: 'cpu' });
    using x = randn([n, 1, 16, 16], { device: 'cpu', generator: new Generator(1) });
    using clean = op.apply(x);
    using y = measure(op, x, { sigma0: 0.1, seed: 77 });
    using again = measure(op, x, { sigma0: 0.1, seed: 77 });
    using other = measure(op, x, { sigma0: 0.1, seed: 78 });
    const [hc, hy, hm] = [await clean.toArray(), await y.toArray(), op.mask];
    expect(await again.toArray()).toEqual(hy);
    expect(await other.toArray()).not.toEqual(hy);
    let ss = 0;
    let count = 0;
    for (let i = 0; i < hy.length; i++) {
      if (hm[i] === 0) expect(hy[i] === 0, `y[${i}] = ${hy[i]}`).toBe(true);
      else ((ss += (hy[i]! - hc[i]!) ** 2), count++);
    }
    // The sample variance of `count` normals: relative standard error sqrt(2 / count).
    expect(Math.abs(ss / count / 0.01 - 1)).toBeLessThan(5 * Math.sqrt(2 / count));
  });

  it('sigma0 = 0 gives the noise-free measurement; bad sigma0 is an error', async () => {
    using op = new BlockAverageOperator(2, [1, 4, 4], 2, { device: 'cpu' });
    using x = randn([2, 1, 4, 4], { device: 'cpu', generator: new Generator(2) });
    using a = op.apply(x);
    using y = measure(op, x, { sigma0: 0, seed: 1 });
    expect(await y.toArray()).toEqual(await a.toArray());
    expect(() => measure(op, x, { sigma0: -1, seed: 1 })).toThrow('options.sigma0: expected a finite noise level >= 0, got -1');
  });

  it('fourier measurements are zero on unsampled lines', async () => {
    using op = randomFourier(2, [2, 8, 8], { centerLines: 2, randomLines: 2, seed: 4, device: 'cpu' });
    using x = randn([2, 2, 8, 8], { device: 'cpu', generator: new Generator(3) });
    using y = measure(op, x, { sigma0: 0.05, seed: 5 });
    const hy = await y.toArray();
    for (let i = 0; i < 2; i++)
      for (let row = 0; row < 8; row++)
        if (!op.lines[i * 8 + row])
          for (let ch = 0; ch < 2; ch++) for (let c = 0; c < 8; c++) expect(hy[((i * 2 + ch) * 8 + row) * 8 + c] === 0).toBe(true);
  });
});
