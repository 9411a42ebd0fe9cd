// DiffEM beyond masks: what the conditional model sees of block-averaged and k-space measurements
// (checked against hand computations: block means, a double-precision DFT), round 0 in the SVD domain
// (the pixel-domain fit for masks, block-constant reconstructions for block averaging), tiny runs with
// both operators, a run stopped and resumed, and the EMA carried from round to round (by hand).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../lib/checkpoint.ts';
import { corruptDataset } from '../../lib/corruption/dataset.ts';
import { diffem, type DiffemOptions } from '../../lib/diffem/em.ts';
import { expandMask, fitGaussianPrior, posteriorSample } from '../../lib/diffem/gaussian-prior.ts';
import { corruptWith, observationsFrom } from '../../lib/diffem/observations.ts';
import { gaussianRoundZero } from '../../lib/diffem/round-zero.ts';
import { UNet, type UNetConfig } from '../../lib/unet.ts';
import { blobs } from '../helpers.ts';

const N = 16;
const clean = blobs(N, 3).images; // [16, 1, 8, 8]
const shape = [N, 1, 8, 8] as const;
const complexClean = new Float32Array(N * 2 * 64);
for (let i = 0; i < N; i++) complexClean.set(clean.subarray(i * 64, (i + 1) * 64), i * 128);

describe('observationsFrom', () => {
  it('block averaging: A⁺y copies each block mean over its block, Aᵀy is that over k², the channel is 1/k', async () => {
    const set = await corruptDataset(clean, shape, { corruption: { kind: 'blockaverage', k: 2 }, sigma0: 0, seed: 1, device: 'cpu' });
    const pinv = await observationsFrom(set);
    const adj = await observationsFrom(set, { condition: 'adjoint' });
    expect(pinv.shape).toEqual([N, 1, 8, 8]);
    for (let i = 0; i < N; i++)
      for (let r = 0; r < 8; r++)
        for (let c = 0; c < 8; c++) {
          const [r0, c0] = [r - (r % 2), c - (c % 2)];
          const px = (rr: number, cc: number) => clean[i * 64 + rr * 8 + cc]!;
          const mean = (px(r0, c0) + px(r0, c0 + 1) + px(r0 + 1, c0) + px(r0 + 1, c0 + 1)) / 4;
          expect(pinv.y[i * 64 + r * 8 + c]).toBeCloseTo(mean, 5);
          expect(adj.y[i * 64 + r * 8 + c]).toBeCloseTo(mean / 4, 5);
        }
    expect(pinv.mask.every((v) => v === 0.5)).toBe(true);
    expect([pinv.kind, pinv.condition, adj.condition]).toEqual(['blockaverage', 'pinv', 'adjoint']);
  });

  it('fourier: the condition is the zero-filled inverse DFT (double precision), the channel the sampled rows', async () => {
    const set = await corruptDataset(clean, shape, {
      corruption: { kind: 'fourier', centerLines: 2, randomLines: 2 },
      sigma0: 0,
      seed: 5,
      device: 'cpu',
    });
    expect(set.signalShape).toEqual([2, 8, 8]);
    const o = await observationsFrom(set);
    const lines = set.params.kind === 'fourier' ? set.params.lines : new Uint8Array();
    const H = 8,
      W = 8;
    for (let i = 0; i < 3; i++) {
      // Unitary DFT of the real image (forward e^{-2πi(ua/H + vb/W)}), rows not sampled set to zero, inverted.
      const re = new Float64Array(64),
        im = new Float64Array(64);
      for (let u = 0; u < H; u++)
        for (let v = 0; v < W; v++) {
          if (!lines[i * H + u]) continue;
          for (let a = 0; a < H; a++)
            for (let b = 0; b < W; b++) {
              const ph = -2 * Math.PI * ((u * a) / H + (v * b) / W);
              re[u * W + v]! += (clean[i * 64 + a * W + b]! * Math.cos(ph)) / 8;
              im[u * W + v]! += (clean[i * 64 + a * W + b]! * Math.sin(ph)) / 8;
            }
          // The measurement is that k-space row as stored.
          expect(set.measurements[i * 128 + u * W + v]).toBeCloseTo(re[u * W + v]!, 4);
        }
      for (let a = 0; a < H; a++)
        for (let b = 0; b < W; b++) {
          let xr = 0,
            xi = 0;
          for (let u = 0; u < H; u++)
            for (let v = 0; v < W; v++) {
              const ph = 2 * Math.PI * ((u * a) / H + (v * b) / W);
              xr += (re[u * W + v]! * Math.cos(ph) - im[u * W + v]! * Math.sin(ph)) / 8;
              xi += (re[u * W + v]! * Math.sin(ph) + im[u * W + v]! * Math.cos(ph)) / 8;
            }
          expect(o.y[i * 128 + a * W + b]).toBeCloseTo(xr, 4);
          expect(o.y[i * 128 + 64 + a * W + b]).toBeCloseTo(xi, 4);
          expect(o.mask[i * 64 + a * W + b]).toBe(lines[i * H + a]);
        }
    }
  });
});

describe('gaussianRoundZero', () => {
  it('for masks is the pixel-domain fit of the first DiffEM version, value for value', async () => {
    const set = await corruptDataset(clean, shape, {
      corruption: { kind: 'mask', p: 0.3, patch: 1 },
      sigma0: 0.02,
      seed: 2,
      device: 'cpu',
    });
    const r0 = await gaussianRoundZero(set, { rank: 3, iterations: 4, seed: 9 });
    const mask = expandMask(Uint8Array.from(set.params.kind === 'mask' ? set.params.mask : []), N, 1, 64);
    const prior = await fitGaussianPrior(set.measurements, mask, N, 64, { rank: 3, iterations: 4, sigmaY: 0.02, seed: 9 });
    const want = Float32Array.from(posteriorSample(prior, set.measurements, mask, N, 64, 0.02, 9));
    expect(r0.unobserved).toBe(0);
    expect([...r0.x]).toEqual([...want]);
  });

  it('block averaging: refuses the never-observed detail unless asked, then reconstructs block-constant images', async () => {
    const set = await corruptDataset(clean, shape, { corruption: { kind: 'blockaverage', k: 2 }, sigma0: 0.01, seed: 1, device: 'cpu' });
    await expect(gaussianRoundZero(set, { rank: 4, iterations: 3 })).rejects.toThrow(
      /coordinate \d+ is never observed in the 16 samples \(48 of 64 coordinates .*unobserved: 'zero'/,
    );
    const r0 = await gaussianRoundZero(set, { rank: 4, iterations: 3, unobserved: 'zero' });
    expect([r0.unobserved, r0.coordinates]).toEqual([48, 64]);
    // The null space of block averaging is the detail within blocks: it stays 0, so each block is constant.
    for (let i = 0; i < N; i++)
      for (let r = 0; r < 8; r += 2)
        for (let c = 0; c < 8; c += 2) {
          const v = r0.x[i * 64 + r * 8 + c]!;
          for (const [dr, dc] of [
            [0, 1],
            [1, 0],
            [1, 1],
          ])
            expect(r0.x[i * 64 + (r + dr!) * 8 + c + dc!]).toBeCloseTo(v, 5);
        }
  });
});

const config: UNetConfig = { inChannels: 3, outChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
const quick = {
  stepsPerRound: 4,
  batchSize: 4,
  optimizer: { lr: 1e-3 },
  sampler: { method: 'heun' as const, steps: 3, batchSize: 16 },
  seed: 3,
  emaDecay: 0.9,
};

describe('diffem with other operators', () => {
  it('block averaging: rounds run, state records the operator, a stopped run resumes exactly', async () => {
    const set = await corruptDataset(clean, shape, { corruption: { kind: 'blockaverage', k: 2 }, sigma0: 0.01, seed: 1, device: 'cpu' });
    const observations = await observationsFrom(set);
    const initial = (await gaussianRoundZero(set, { rank: 4, iterations: 3, unobserved: 'zero' })).x;
    const options = (extra: Partial<DiffemOptions> = {}): DiffemOptions => ({
      model: new UNet(config, { device: 'cpu', seed: 4 }),
      observations,
      corruption: { kind: 'blockaverage', k: 2, sigma0: 0.01 },
      initial,
      rounds: 2,
      ...quick,
      ...extra,
    });
    const whole = await diffem(options());
    expect(whole.reconstructions.every(Number.isFinite)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-diffem-op-'));
    const controller = new AbortController();
    const stopped = await diffem(
      options({ dir, signal: controller.signal, onProgress: (round, p) => round === 2 && p.step >= 2 && controller.abort() }),
    );
    expect(stopped.rounds.map((r) => r.round)).toEqual([1]);
    const resumed = await diffem(options({ dir, model: new UNet(config, { device: 'cpu', seed: 11 }) }));
    expect(resumed.rounds.map((r) => r.round)).toEqual([2]);
    expect([...resumed.reconstructions]).toEqual([...whole.reconstructions]);
    // The state names the operator and the condition: observations of another form are refused.
    const adjoint = await observationsFrom(set, { condition: 'adjoint' });
    await expect(diffem(options({ dir, observations: adjoint, rounds: 3 }))).rejects.toThrow(
      /belongs to a run on blockaverage measurements conditioned on A⁺y, these are blockaverage measurements conditioned on Aᵀy/,
    );
    // State written before the operator was recorded is a mask run.
    writeFileSync(
      join(dir, 'state.json'),
      JSON.stringify({ format: 'kintsugi-diffem-1', round: 2, shape: [N, 1, 8, 8], eStep: 'conditional' }),
    );
    await expect(diffem(options({ dir, rounds: 3 }))).rejects.toThrow(/belongs to a run on mask measurements/);
    // The re-corruption law must be the observations' own.
    await expect(diffem(options({ corruption: { p: 0.5, sigma0: 0.01 } }))).rejects.toThrow(
      /made by a blockaverage operator, the re-corruption law is mask/,
    );
  }, 600_000); // a hang limit for a loaded machine, not a speed target

  it('fourier: a tiny run on [2, H, W] signals, with the M-step drawing fresh k-space lines', async () => {
    const law = { kind: 'fourier' as const, centerLines: 2, randomLines: 2, sigma0: 0.01 };
    const observations = await corruptWith(complexClean, [N, 2, 8, 8], law, 8n);
    const again = await corruptWith(complexClean, [N, 2, 8, 8], law, 9n);
    // Real [1, H, W] reconstructions cannot be re-corrupted into [2, H, W] k-space pairs: the shape must be the signal's.
    await expect(corruptWith(clean, shape, law, 8n)).rejects.toThrow(
      'diffem: a fourier corruption turns [1, 8, 8] signals into [2, 8, 8]; give DiffEM the signals in that shape (fourier: [2, H, W])',
    );
    expect([...again.mask]).not.toEqual([...observations.mask]); // another seed, other lines
    const set = observations.source!;
    const initial = (await gaussianRoundZero(set, { rank: 4, iterations: 3 })).x;
    const model = new UNet({ ...config, inChannels: 5, outChannels: 2 }, { device: 'cpu', seed: 4 });
    const r = await diffem({ model, observations, corruption: law, initial, rounds: 1, ...quick });
    expect(r.reconstructions.length).toBe(N * 128);
    expect(r.reconstructions.every(Number.isFinite)).toBe(true);
    // mmps on the same observations takes the operator from the set.
    const prior = new UNet({ ...config, inChannels: 2, outChannels: 2 }, { device: 'cpu', seed: 4 });
    const m = await diffem({
      model: prior,
      eStep: 'mmps',
      observations,
      corruption: law,
      initial,
      rounds: 1,
      ...quick,
      sampler: { steps: 3, batchSize: 16, cgIterations: 1 },
    });
    expect(m.reconstructions.every(Number.isFinite)).toBe(true);
  }, 600_000);

  it('carries the EMA: each round starts its EMA at the round-start weights, and the next round starts from it', async () => {
    const set = await corruptDataset(clean, shape, {
      corruption: { kind: 'mask', p: 0.3, patch: 1 },
      sigma0: 0.01,
      seed: 2,
      device: 'cpu',
    });
    const observations = await observationsFrom(set);
    const model = new UNet(config, { device: 'cpu', seed: 4 });
    const w0 = await model.params.toArray();
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-diffem-ema-'));
    const decay = 0.75;
    await diffem({
      model,
      observations,
      corruption: { p: 0.3, sigma0: 0.01 },
      initial: Float32Array.from(observations.y),
      rounds: 2,
      ...quick,
      stepsPerRound: 1,
      emaDecay: decay,
      dir,
    });
    // With one step per round, round k's EMA is decay · (its start) + (1 − decay) · (its one step's weights).
    const c1 = await readCheckpoint(join(dir, 'round-1.safetensors'));
    const c2 = await readCheckpoint(join(dir, 'round-2.safetensors'));
    expect(c1.ema && c2.ema).toBeTruthy();
    let worst = 0;
    for (let j = 0; j < w0.length; j++) {
      const ema1 = decay * w0[j]! + (1 - decay) * c1.params[j]!;
      const ema2 = decay * c1.ema![j]! + (1 - decay) * c2.params[j]!;
      worst = Math.max(worst, Math.abs(c1.ema![j]! - ema1), Math.abs(c2.ema![j]! - ema2));
    }
    expect(worst).toBeLessThan(1e-6);
    // The EMA starts at the model's weights when a round's training starts, so ema2's formula holding
    // means round 2 started from round 1's EMA; and the run ends on the last EMA.
    expect([...(await model.params.toArray())]).toEqual([...c2.ema!]);
  }, 600_000);
});
