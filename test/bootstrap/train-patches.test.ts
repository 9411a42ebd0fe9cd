// The patch model with position channels: its trainer builds the same position channels as the
// native patch_extract, its loss falls, and the trained UNet drops into the bootstrapped denoiser.
import { describe, expect, it } from 'vitest';
import { NoiseSchedule, tensor, UNet, unetDenoiser, type UNetConfig } from '../../lib/index.ts';
import { cropDataset } from '../../lib/bootstrap/data.ts';
import { aggregateEstimate } from '../../lib/bootstrap/denoiser.ts';
import { patchPosition, trainPatchModel } from '../../lib/bootstrap/train-patches.ts';
import { extractPatches, patchOffsets } from '../../lib/bootstrap/views.ts';
import { testValues, blobs } from '../helpers.ts';

const config: UNetConfig = { inChannels: 3, outChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 4 };
const schedule = new NoiseSchedule({ kind: 'linear' });

describe('trainPatchModel (position channels)', () => {
  it('builds the position channels of patch_extract', async () => {
    const [H, W, P] = [6, 10, 4];
    const x = tensor(testValues(H * W, 5), [1, 1, H, W], { device: 'cpu' });
    const patches = await extractPatches(x, { size: P, stride: 2, positions: true }).toArray();
    for (const [j, [oy, ox]] of patchOffsets(H, W, P, 2).entries())
      for (let u = 0; u < P; u++)
        for (let v = 0; v < P; v++) {
          expect(patches[((j * 3 + 1) * P + u) * P + v]).toBeCloseTo(patchPosition(oy + u, H), 6);
          expect(patches[((j * 3 + 2) * P + u) * P + v]).toBeCloseTo(patchPosition(ox + v, W), 6);
        }
    x.dispose();
  });

  it('lowers the loss, and the model drops into the bootstrapped denoiser', async () => {
    const crops = cropDataset(blobs(64), { size: 4, count: 512, seed: 2 });
    const model = new UNet(config, { device: 'cpu', seed: 3 });
    const r = await trainPatchModel({ model, crops, schedule, batchSize: 16, steps: 60, optimizer: { lr: 2e-3 }, seed: 1, emaDecay: 0 });
    const first = r.losses.slice(0, 10).reduce((a, l) => a + l.loss, 0) / 10;
    const last = r.losses.slice(-10).reduce((a, l) => a + l.loss, 0) / 10;
    console.log(`patch model loss: first 10 steps ${first.toFixed(3)}, last 10 ${last.toFixed(3)}`);
    expect(last).toBeLessThan(0.8 * first);
    const xt = tensor(testValues(2 * 64, 6), [2, 1, 8, 8], { device: 'cpu' });
    const views = { schedule, patch: { denoiser: unetDenoiser(model), prediction: 'eps' as const, size: 4, stride: 2, positions: true } };
    const agg = await aggregateEstimate(views, xt, Float32Array.of(100, 500)).toArray();
    expect(agg.length).toBe(128);
    expect(agg.every(Number.isFinite)).toBe(true);
    xt.dispose();
    model.dispose();
  }, 600_000); // a hang limit, not a speed target: generous for a loaded machine

  it('refuses a model without the position channels', async () => {
    const crops = cropDataset(blobs(4), { size: 4, count: 8 });
    const model = new UNet({ ...config, inChannels: 1 }, { device: 'cpu' });
    await expect(trainPatchModel({ model, crops, batchSize: 4, steps: 1 })).rejects.toThrow(
      /need a square model with inChannels 3 \(the image and two position channels\)/,
    );
    model.dispose();
  });
});
