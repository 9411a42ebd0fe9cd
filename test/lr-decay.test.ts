// The cosine learning-rate decay of the training loop (LoopOptions.lrDecay) and the rate factor of
// AdamW.step that carries it. Expected values are the half cosine's analytic points and Adam's first
// step, whose size is the rate itself (m̂ / sqrt(v̂) = g / |g| at step 1).
import { describe, expect, it } from 'vitest';
import { AdamW } from '../lib/optim.ts';
import { tensor } from '../lib/tensor.ts';
import { NoiseSchedule, train, UNet } from '../lib/index.ts';
import { blobs } from './helpers.ts';
import { lrDecayFactor } from '../lib/training-loop.ts';

describe('learning-rate decay', () => {
  it('cosine: 1 through the warm-up, 1/2 halfway through the rest, 0 at the last step; constant is 1', () => {
    expect(lrDecayFactor('cosine', 0, 1100, 100)).toBe(1);
    expect(lrDecayFactor('cosine', 99, 1100, 100)).toBe(1);
    expect(lrDecayFactor('cosine', 100, 1100, 100)).toBe(1);
    expect(lrDecayFactor('cosine', 600, 1100, 100)).toBeCloseTo(0.5, 12);
    expect(lrDecayFactor('cosine', 350, 1100, 100)).toBeCloseTo((1 + Math.SQRT1_2) / 2, 12);
    expect(lrDecayFactor('cosine', 1100, 1100, 100)).toBeCloseTo(0, 12);
    expect(lrDecayFactor('constant', 1000, 1100, 100)).toBe(1);
    expect(lrDecayFactor(undefined, 1000, 1100)).toBe(1);
  });

  it('AdamW.step(f) takes a step f times as large, and refuses a factor that is no rate', async () => {
    const g = [0.3, -2, 5e-3, 1];
    const run = async (factor: number) => {
      const target = { params: tensor([1, 1, 1, 1], [4], { device: 'cpu' }), grads: tensor(g, [4], { device: 'cpu' }) };
      const opt = new AdamW(target, { lr: 0.1, eps: 1e-12 });
      try {
        opt.step(factor);
        return Array.from(await target.params.toArray());
      } finally {
        opt.dispose();
        target.params.dispose();
        target.grads.dispose();
      }
    };
    const full = await run(1);
    const half = await run(0.5);
    for (let i = 0; i < 4; i++) {
      expect(full[i]! - 1).toBeCloseTo(-0.1 * Math.sign(g[i]!), 6);
      expect(half[i]! - 1).toBeCloseTo(-0.05 * Math.sign(g[i]!), 6);
    }
    expect(await run(0)).toEqual([1, 1, 1, 1]);
    await expect(run(-1)).rejects.toThrow('AdamW: lrFactor must be a finite number >= 0, got -1');
    await expect(run(Number.NaN)).rejects.toThrow('lrFactor must be a finite number');
  });

  it('the training loop refuses a decay it does not know, by name', async () => {
    const model = new UNet(
      { inChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [4], resolution: 8 },
      { device: 'cpu' },
    );
    const options = { model, data: blobs(16), batchSize: 4, steps: 1, schedule: new NoiseSchedule({ kind: 'linear' }) };
    await expect(train({ ...options, lrDecay: 'linear' as 'cosine' })).rejects.toThrow(
      'train: lrDecay must be "constant" or "cosine", got "linear"',
    );
    const r = await train({ ...options, lrDecay: 'cosine' });
    expect(r.step).toBe(1);
    model.dispose();
  });
});
