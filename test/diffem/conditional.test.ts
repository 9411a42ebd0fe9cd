// DiffEM's conditional model: EDM preconditioning against its defining identities, the VE ancestral
// sampler against exact moments (a Gaussian prior makes the optimal conditional denoiser affine, so
// every sampler step is an affine map plus noise whose moments are computed here in double), and the
// conditional trainer and E-step sampler end to end on the CPU.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Generator } from '../../lib/random.ts';
import { combine } from '../../lib/schedule.ts';
import { ones, type Tensor } from '../../lib/tensor.ts';
import { UNet, type UNetConfig } from '../../lib/unet.ts';
import { karrasSigmas, precondition, resolveEdm } from '../../lib/diffem/edm.ts';
import { conditionalSample, trainConditional, veSample, type ConditionalPairs } from '../../lib/diffem/conditional.ts';
import { blobs } from '../helpers.ts';

const edm = resolveEdm();

describe('EDM preconditioning', () => {
  it('gives the network unit-variance inputs and targets when the data have variance σ_d²', () => {
    for (const sigma of [0.002, 0.1, 0.5, 3, 80]) {
      const p = precondition(edm, sigma);
      const sd2 = edm.sigmaData ** 2;
      // Var(c_in x̃) with Var x̃ = σ_d² + σ²
      expect(p.cIn ** 2 * (sd2 + sigma ** 2)).toBeCloseTo(1, 12);
      // Var F* = Var((x − c_skip (x + σ n)) / c_out) = ((1 − c_skip)² σ_d² + c_skip² σ²) / c_out²
      expect(((1 - p.cSkip) ** 2 * sd2 + p.cSkip ** 2 * sigma ** 2) / p.cOut ** 2).toBeCloseTo(1, 10);
    }
    expect(precondition(edm, edm.sigmaMin).cNoise).toBeCloseTo(0, 10);
    expect(precondition(edm, edm.sigmaMax).cNoise).toBeCloseTo(1000, 10);
  });

  it('spaces the sampling grid as Karras et al. (ρ = 7) from σ_max down to σ_min', () => {
    const s = karrasSigmas(edm, 18);
    expect(s[0]).toBeCloseTo(80, 10);
    expect(s[17]).toBeCloseTo(0.002, 12);
    for (let i = 1; i < s.length; i++) expect(s[i]!).toBeLessThan(s[i - 1]!);
    // ρ = 7: σ^(1/7) is evenly spaced
    const d = s.map((v) => v ** (1 / 7));
    for (let i = 2; i < d.length; i++) expect(d[i]! - d[i - 1]!).toBeCloseTo(d[1]! - d[0]!, 12);
  });

  it('rejects bad settings', () => {
    expect(() => resolveEdm({ sigmaMin: 1, sigmaMax: 1 })).toThrow(/sigmaMin \(1\) must be below sigmaMax/);
    expect(() => resolveEdm({ sigmaData: -1 })).toThrow(/edm.sigmaData: expected a positive number/);
    expect(() => precondition(edm, 0)).toThrow(/sigma: expected a positive number/);
    expect(() => karrasSigmas(edm, 1)).toThrow(/steps/);
  });
});

describe('veSample', () => {
  // Prior x ~ N(MU, S²) per pixel; optionally every pixel observed as y = x + σ_y n with the same y.
  const MU = 0.3;
  const S = 0.4;
  /** D(x̃, σ) = a x̃ + b: the posterior mean of x given x̃ (and y), a precision-weighted average. */
  const affine = (sigma: number, obs?: { y: number; sy: number }) => {
    const prec = 1 / S ** 2 + 1 / sigma ** 2 + (obs ? 1 / obs.sy ** 2 : 0);
    return { a: 1 / sigma ** 2 / prec, b: (MU / S ** 2 + (obs ? obs.y / obs.sy ** 2 : 0)) / prec };
  };
  const denoiser = (obs?: { y: number; sy: number }) => (x: Tensor, sigma: number) => {
    const { a, b } = affine(sigma, obs);
    const n = x.shape[0]!;
    const one = ones(x.shape, { device: x.device });
    const d = combine([
      [x, new Array(n).fill(a)],
      [one, new Array(n).fill(b)],
    ]);
    one.dispose();
    return d;
  };
  /** The sampler's exact output moments with this denoiser, from its update rule. */
  const exactMoments = (method: 'ancestral' | 'heun', steps: number, obs?: { y: number; sy: number }) => {
    const sig = karrasSigmas(edm, steps);
    let mean = 0;
    let variance = sig[0]! ** 2;
    for (let i = 0; i < steps; i++) {
      const s = sig[i]!;
      const { a, b } = affine(s, obs);
      if (i === steps - 1) return { mean: a * mean + b, variance: a * a * variance };
      const sn = sig[i + 1]!;
      if (method === 'ancestral') {
        const r = sn ** 2 / s ** 2;
        mean = (r + (1 - r) * a) * mean + (1 - r) * b;
        variance = (r + (1 - r) * a) ** 2 * variance + sn ** 2 * (1 - r);
      } else {
        // slope k(x) = ((1 − a) x − b) / σ; Euler, then the mean of both slopes: x' = A x + B
        const h = sn - s;
        const [k1a, k1b] = [(1 - a) / s, -b / s];
        const [ea, eb] = [1 + h * k1a, h * k1b];
        const n2 = affine(sn, obs);
        const [k2a, k2b] = [((1 - n2.a) * ea) / sn, ((1 - n2.a) * eb - n2.b) / sn];
        const [A, B] = [1 + (h / 2) * (k1a + k2a), (h / 2) * (k1b + k2b)];
        mean = A * mean + B;
        variance = A * A * variance;
      }
    }
    throw new Error('unreachable');
  };

  for (const [method, steps, tolerance] of [
    ['ancestral', 256, 0.06],
    ['heun', 64, 0.015],
  ] as const)
    for (const obs of [undefined, { y: -0.5, sy: 0.2 }]) {
      it(`${method}: draws the exact moments of its update rule, within ${tolerance * 100} % of the true ${obs ? 'posterior' : 'prior'}`, async () => {
        const x = await veSample(denoiser(obs), { shape: [16, 1, 16, 16], device: 'cpu', method, steps, generator: new Generator(5) });
        const v = await x.toArray();
        x.dispose();
        const m = v.reduce((s, e) => s + e, 0) / v.length;
        const variance = v.reduce((s, e) => s + (e - m) ** 2, 0) / v.length;
        const exact = exactMoments(method, steps, obs);
        const n = v.length;
        expect(Math.abs(m - exact.mean)).toBeLessThan(5 * Math.sqrt(exact.variance / n));
        expect(Math.abs(variance / exact.variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
        // And the update rule itself targets the right law: the true posterior of x given y. The
        // ancestral rule under-disperses by O(1/steps) (4.8 % of the variance at 256 steps), Heun errs
        // by O(1/steps²) (3.4 % at 32 steps, 0.8 % at 64); both miss the mean by ~1.5e-3 because the
        // start N(0, σ_max²) ignores the data mean (0.3 here) at σ_max = 80.
        const post = obs
          ? { mean: (MU / S ** 2 + obs.y / obs.sy ** 2) / (1 / S ** 2 + 1 / obs.sy ** 2), variance: 1 / (1 / S ** 2 + 1 / obs.sy ** 2) }
          : { mean: MU, variance: S * S };
        expect(Math.abs(exact.mean - post.mean)).toBeLessThan(2e-3);
        expect(Math.abs(exact.variance / post.variance - 1)).toBeLessThan(tolerance);
      });
    }
});

describe('trainConditional and conditionalSample', () => {
  const config: UNetConfig = {
    inChannels: 3,
    outChannels: 1,
    channels: 16,
    mult: [1, 1],
    resBlocks: 1,
    attnResolutions: [],
    resolution: 8,
  };
  /** blobs with every other column observed, measured with a little noise. */
  function pairs(n: number): ConditionalPairs {
    const data = blobs(n);
    const mask = new Float32Array(n * 64).map((_, i) => (i % 2 === 0 ? 1 : 0));
    const y = data.images.map((v, i) => mask[i]! * (v + 0.01 * Math.sin(i)));
    return { shape: [n, 1, 8, 8], x: data.images, y, mask };
  }
  const base = { data: pairs(128), batchSize: 16, optimizer: { lr: 2e-3 }, seed: 3, progressEvery: 5 };

  it('lowers the loss, and a resumed run repeats the uninterrupted one', async () => {
    const r = await trainConditional({ ...base, model: new UNet(config, { device: 'cpu', seed: 1 }), steps: 60 });
    const first = r.losses.slice(0, 10).reduce((a, l) => a + l.loss, 0) / 10;
    const last = r.losses.slice(-10).reduce((a, l) => a + l.loss, 0) / 10;
    expect(last).toBeLessThan(0.8 * first);

    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-diffem-'));
    const path = join(dir, 'c.safetensors');
    const whole = await trainConditional({ ...base, model: new UNet(config, { device: 'cpu', seed: 1 }), steps: 8 });
    await trainConditional({ ...base, model: new UNet(config, { device: 'cpu', seed: 1 }), steps: 4, checkpoint: { path, every: 4 } });
    const resumed = await trainConditional({ ...base, model: new UNet(config, { device: 'cpu', seed: 9 }), steps: 8, resume: path });
    expect(resumed.losses.map((l) => l.loss)).toEqual(whole.losses.slice(4).map((l) => l.loss));
  });

  it('samples one finite image per observation, reproducibly', async () => {
    const model = new UNet(config, { device: 'cpu', seed: 1 });
    await trainConditional({ ...base, model, steps: 10 });
    const obs = pairs(6);
    const a = await conditionalSample(model, obs, { steps: 8, batchSize: 4, seed: 2 });
    const b = await conditionalSample(model, obs, { steps: 8, batchSize: 4, seed: 2 });
    const c = await conditionalSample(model, obs, { steps: 8, batchSize: 4, seed: 3 });
    expect(a.length).toBe(6 * 64);
    expect(a.every(Number.isFinite)).toBe(true);
    expect([...a]).toEqual([...b]);
    expect([...a]).not.toEqual([...c]);
  });

  it('says what is wrong with the model or the data', async () => {
    const wrong = new UNet({ ...config, inChannels: 1 }, { device: 'cpu' });
    await expect(trainConditional({ ...base, model: wrong, steps: 1 })).rejects.toThrow(
      /need a conditional UNet with inChannels 3 \(x̃, y and the mask\), outChannels 1/,
    );
    const model = new UNet(config, { device: 'cpu' });
    const bad = pairs(4);
    bad.mask[3] = 0.5;
    await expect(trainConditional({ ...base, data: bad, model, steps: 1 })).rejects.toThrow(/mask: value 3 is 0.5, expected 0 or 1/);
    const nan = pairs(4);
    nan.y[0] = NaN;
    await expect(conditionalSample(model, nan)).rejects.toThrow(/y: value 0 is NaN/);
    await expect(conditionalSample(model, { ...pairs(4), mask: new Float32Array(3) })).rejects.toThrow(/mask: expected 256 values/);
  });
});
