// trainBootstrap and loadBootstrap: a second run reuses the first run's view models (viewsFrom) and
// its manifest points at them; the loaded denoiser is the views' aggregate plus the trained f0.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tensor, type Dataset, type UNetConfig } from '../../lib/index.ts';
import { aggregateEstimate } from '../../lib/bootstrap/denoiser.ts';
import { loadBootstrap, parseViews, trainBootstrap } from '../../lib/bootstrap/run.ts';
import { testValues } from '../helpers.ts';

const config: UNetConfig = { inChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
const data: Dataset = { images: testValues(32 * 64, 3).map((v) => 0.5 * v), shape: [32, 1, 8, 8] };

describe('trainBootstrap', () => {
  it('reuses trained views for another N, and loads back as a denoiser', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kintsugi-boot-run-'));
    const base = { data, views: parseViews('lowres:2,patch:4/2'), config, steps: 3, batchSize: 4, optimizer: { lr: 1e-3 }, device: 'cpu' };
    const first = await trainBootstrap({ ...base, full: 4, outDir: join(root, 'a') });
    const second = await trainBootstrap({ ...base, full: 8, outDir: join(root, 'b'), viewsFrom: first.path });
    const m = JSON.parse(readFileSync(second.path, 'utf8'));
    expect(m).toMatchObject({
      full: 8,
      lowres: { checkpoint: '../a/lowres.safetensors' },
      patch: { checkpoint: '../a/patch.safetensors' },
      residual: { checkpoint: 'residual.safetensors' },
    });
    const boot = await loadBootstrap(second.path, { device: 'cpu' });
    const xt = tensor(testValues(2 * 64, 4), [2, 1, 8, 8], { device: 'cpu' });
    const t = Float32Array.of(200, 700);
    const [d, agg] = [await boot.denoiser(xt, t).toArray(), await aggregateEstimate(boot.views, xt, t).toArray()];
    expect(boot.imageShape).toEqual([1, 8, 8]);
    // D = x̂_agg + f0, and f0 has learned something in 3 steps (its output layer starts at zero).
    const diff = d.reduce((s, v, i) => s + Math.abs(v - agg[i]!), 0);
    expect(diff).toBeGreaterThan(0);
    expect(Number.isFinite(diff)).toBe(true);
    xt.dispose();
    boot.dispose();
    await expect(trainBootstrap({ ...base, full: 33, outDir: join(root, 'c') })).rejects.toThrow(/full: expected an integer in \[1, 32\]/);
  }, 600_000); // a hang limit, not a speed target: generous for a loaded machine
});
