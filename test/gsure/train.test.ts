// GSURE training end to end on the CPU: statistics of a measurement set, a resumed run repeating the
// uninterrupted one, and the point of the method: trained only on masked, noisy images, the network
// denoises clean images far better than the same network trained naively on the masked images, and
// nearly as well as the same network trained on the clean images (the oracle).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { corruptDataset, Generator, randn, tensor, train, UNet, type UNetConfig } from '../../lib/index.ts';
import { gsureSchedule, svdStatistics, trainGsure } from '../../lib/gsure/train.ts';
import { combine } from '../../lib/schedule.ts';
import { blobs } from '../helpers.ts';

const config: UNetConfig = { inChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };

const corruption = { kind: 'mask' as const, patch: 2, p: 0.4 };
const sigma0 = 0.05;

describe('trainGsure', () => {
  it('observation frequencies and vMax of a measurement set', async () => {
    const set = await corruptDataset(blobs(400, 1).images, [400, 1, 8, 8], { corruption, sigma0, seed: 3 });
    const { frequency, vMax } = await svdStatistics(set);
    expect(vMax).toBeCloseTo(sigma0 ** 2, 12);
    // Every pixel is kept with probability 1 - p = 0.6: 400 draws give a standard error of 0.0245.
    const mean = frequency.reduce((a, b) => a + b, 0) / frequency.length;
    expect(Math.abs(mean - 0.6)).toBeLessThan(0.02);
    for (const f of frequency) expect(Math.abs(f - 0.6)).toBeLessThan(5 * 0.0245);
    const blocks = await corruptDataset(blobs(10, 1).images, [10, 1, 8, 8], {
      corruption: { kind: 'blockaverage', k: 2 },
      sigma0,
      seed: 3,
    });
    const b = await svdStatistics(blocks);
    expect(b.vMax).toBeCloseTo(sigma0 ** 2 * 4, 12); // s = 1/k
    expect(b.frequency.filter((f) => f === 1).length).toBe(16); // one observed coefficient per 2x2 block
    expect(b.frequency.filter((f) => f === 0).length).toBe(48);
    // The default schedule adds at least the measurement noise at t = 0.
    expect(gsureSchedule(vMax).betas[0]).toBeGreaterThanOrEqual(vMax / (1 + vMax));
  });

  it('a run resumed from a checkpoint repeats the uninterrupted losses exactly', async () => {
    const set = await corruptDataset(blobs(64, 2).images, [64, 1, 8, 8], { corruption, sigma0, seed: 4 });
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-gsure-'));
    const path = join(dir, 'ckpt.safetensors');
    const base = { measurements: set, batchSize: 8, seed: 5, optimizer: { lr: 1e-3 } };
    const whole = await trainGsure({ ...base, model: new UNet(config, { device: 'cpu', seed: 1 }), steps: 6 });
    await trainGsure({ ...base, model: new UNet(config, { device: 'cpu', seed: 1 }), steps: 3, checkpoint: { path, every: 3 } });
    const resumed = await trainGsure({ ...base, model: new UNet(config, { device: 'cpu', seed: 77 }), steps: 6, resume: path });
    expect(resumed.losses.map((l) => l.step)).toEqual([3, 4, 5]);
    expect(resumed.losses.map((l) => l.loss)).toEqual(whole.losses.slice(3).map((l) => l.loss));
  });

  it('trained on masked noisy images only, it denoises clean images better than naive training on them', async () => {
    const N = 512;
    const clean = blobs(N, 7).images;
    const set = await corruptDataset(clean, [N, 1, 8, 8], { corruption, sigma0, seed: 8 });
    const stats = await svdStatistics(set);
    const schedule = gsureSchedule(stats.vMax);
    const common = { batchSize: 32, steps: 250, optimizer: { lr: 2e-3, warmupSteps: 20 }, emaDecay: 0, seed: 9 };
    const gsureNet = new UNet(config, { device: 'cpu', seed: 2 });
    await trainGsure({ ...common, model: gsureNet, measurements: set, schedule });
    // Naive: the masked images (0 in the holes, as a user would get them) as if they were clean data.
    const naiveNet = new UNet(config, { device: 'cpu', seed: 2 });
    await train({ ...common, model: naiveNet, data: { images: set.measurements, shape: [N, 1, 8, 8] }, schedule, prediction: 'x0' });

    // Clean-data denoising error E|h(x_t, t) - x0|^2 on fresh blobs, over t in the schedule's range.
    const test = blobs(256, 99).images;
    const x0 = tensor(test, [256, 1, 8, 8], { device: 'cpu' });
    const error = async (net: UNet) => {
      let total = 0;
      for (const t of [50, 200, 400, 700]) {
        const ab = schedule.alphaBars[t]!;
        const eps = randn([256, 1, 8, 8], { generator: new Generator(t), device: 'cpu' });
        const xt = combine([
          [x0, new Array(256).fill(Math.sqrt(ab))],
          [eps, new Array(256).fill(Math.sqrt(1 - ab))],
        ]);
        const out = await net.predict(xt, tensor(new Float32Array(256).fill(t), [256], { device: 'cpu' })).toArray();
        let se = 0;
        for (let i = 0; i < out.length; i++) se += (out[i]! - test[i]!) ** 2;
        total += se / out.length / 4;
      }
      return total;
    };
    // The oracle: the same training on the clean images, for scale.
    const oracleNet = new UNet(config, { device: 'cpu', seed: 2 });
    await train({ ...common, model: oracleNet, data: { images: clean, shape: [N, 1, 8, 8] }, schedule, prediction: 'x0' });
    const [eg, en, eo] = [await error(gsureNet), await error(naiveNet), await error(oracleNet)];
    console.log(`clean-data x0 error: GSURE ${eg.toFixed(4)}, naive ${en.toFixed(4)}, oracle (clean data) ${eo.toFixed(4)}`);
    expect(eg).toBeLessThan(0.6 * en); // measured 0.126 vs 0.242
    expect(eg).toBeLessThan(1.3 * eo); // measured 0.126 vs the oracle's 0.115
  }, 600_000); // a hang limit, not a speed target: generous for a loaded machine
});
