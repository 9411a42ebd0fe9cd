// Bootstrapping from genuinely partial data: separate view data sets (shapes checked, errors that name
// the set), a tiny run from them whose view models are trained on those sets and no others, and the
// default residual, the paper's unconditioned f0(x_t).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadUNet, readCheckpoint } from '../../lib/checkpoint.ts';
import { cropDataset, lowresDataset } from '../../lib/bootstrap/data.ts';
import { aggregateEstimate } from '../../lib/bootstrap/denoiser.ts';
import { checkBootstrapData, loadBootstrap, parseViews, trainBootstrap, type BootstrapRunOptions } from '../../lib/bootstrap/run.ts';
import { unetDenoiser } from '../../lib/sample.ts';
import { tensor } from '../../lib/tensor.ts';
import type { Dataset } from '../../lib/train.ts';
import type { UNetConfig } from '../../lib/unet.ts';
import { testValues } from '../helpers.ts';

const config: UNetConfig = { inChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
const set = (n: number, h: number, seed: number): Dataset => ({
  images: testValues(n * h * h, seed).map((v) => 0.5 * v),
  shape: [n, 1, h, h],
});
const full = set(4, 8, 1);
const lowres = set(12, 4, 2);
const patches = set(20, 4, 3);
const views = parseViews('lowres:2,patch:4/2');
const base = { views, config, steps: 3, batchSize: 4, optimizer: { lr: 1e-3 }, device: 'cpu' };

describe('separate view data sets', () => {
  it('checks every set against the views and the full images, naming the set', () => {
    const check = (o: Partial<BootstrapRunOptions>) => () => checkBootstrapData({ ...base, outDir: '', ...o } as BootstrapRunOptions);
    expect(check({ sets: { full, lowres, patches } })).not.toThrow();
    expect(check({ sets: { full, lowres: set(12, 8, 2) } })).toThrow(
      "sets.lowres: expected images [N, 1, 4, 4] (the full images' [1, 8, 8] pooled by lowres:2), got [12, 1, 8, 8]",
    );
    expect(check({ sets: { full, patches: set(20, 8, 3) } })).toThrow(
      'sets.patches: expected crops [N, 1, 4, 4] (patch:4 of [1, 8, 8] images), got [20, 1, 8, 8]',
    );
    expect(check({ sets: { full, lowres: { images: new Float32Array(5), shape: [12, 1, 4, 4] } } })).toThrow(
      'sets.lowres.images: shape [12, 1, 4, 4] needs 192 values, got 5',
    );
    expect(check({ sets: { full: { images: Float32Array.of(NaN), shape: [1, 1, 1, 1] } } })).toThrow('sets.full.images: value 0 is NaN');
    expect(check({ sets: { full, lowres }, views: parseViews('patch:4') })).toThrow('sets.lowres: given, but views has no lowres view');
    expect(check({ sets: { full, patches }, views: parseViews('patch:4+pos') })).toThrow(
      /position channels \(\+pos\), which need each crop's offsets/,
    );
    const crops = cropDataset(full, { size: 4, count: 6, seed: 1 });
    expect(check({ sets: { full, patches: crops }, views: parseViews('patch:4+pos') })).not.toThrow();
    expect(check({ sets: { full, patches: { ...crops, imageSize: [16, 16] } }, views: parseViews('patch:4+pos') })).toThrow(
      'sets.patches.imageSize: expected [8, 8] (the full images), got [16,16]',
    );
    expect(check({ data: full, full: 2, sets: { full } })).toThrow(/give either data .* or sets/);
    expect(check({})).toThrow(/give either data .* or sets/);
    expect(check({ data: full, full: 5 })).toThrow('full: expected an integer in [1, 4]');
  });

  it('trains each view on its own set, f0 on the full set, and defaults to the unconditioned residual', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kintsugi-boot-sets-'));
    const separate = await trainBootstrap({ ...base, sets: { full, lowres, patches }, outDir: join(root, 'separate') });
    const manifest = JSON.parse(readFileSync(separate.path, 'utf8'));
    expect(manifest).toMatchObject({ full: 4, residual: { conditioned: false } });
    expect((await readCheckpoint(join(root, 'separate', 'residual.safetensors'))).config.inChannels).toBe(1); // f0(x_t): C channels

    // A low-res set equal to the pooled full images trains exactly the model the derived view trains
    // (same data, same seeds); the separate set above trains another one.
    const pooled = await lowresDataset(full, 2);
    const same = await trainBootstrap({
      ...base,
      views: parseViews('lowres:2'),
      sets: { full, lowres: pooled },
      outDir: join(root, 'pooled'),
    });
    const derived = await trainBootstrap({ ...base, views: parseViews('lowres:2'), sets: { full }, outDir: join(root, 'derived') });
    expect(same.aborted || derived.aborted).toBe(false);
    const params = async (dir: string) => [...(await readCheckpoint(join(root, dir, 'lowres.safetensors'))).params];
    expect(await params('pooled')).toEqual(await params('derived'));
    expect(await params('separate')).not.toEqual(await params('derived'));

    // The loaded denoiser is x̂_agg + f0(x_t), f0 evaluated on x_t alone.
    const boot = await loadBootstrap(separate.path, { device: 'cpu' });
    const f0 = await loadUNet(join(root, 'separate', 'residual.safetensors'), { device: 'cpu', useEma: true });
    const xt = tensor(testValues(2 * 64, 4), [2, 1, 8, 8], { device: 'cpu' });
    const t = Float32Array.of(150, 650);
    const [d, agg, r] = [
      await boot.denoiser(xt, t).toArray(),
      await aggregateEstimate(boot.views, xt, t).toArray(),
      await unetDenoiser(f0)(xt, t).toArray(),
    ];
    let worst = 0;
    for (let i = 0; i < d.length; i++) worst = Math.max(worst, Math.abs(d[i]! - agg[i]! - r[i]!));
    expect(worst).toBeLessThan(1e-5);
    expect(r.some((v) => v !== 0)).toBe(true); // f0 moved off its zero-initialised output
    xt.dispose();
    f0.dispose();
    boot.dispose();

    // The conditioned residual stays an option; a manifest that misstates f0's form is refused on load.
    const cond = await trainBootstrap({
      ...base,
      views: parseViews('lowres:2'),
      sets: { full, lowres },
      residual: 'conditioned',
      outDir: join(root, 'cond'),
    });
    expect((await readCheckpoint(join(root, 'cond', 'residual.safetensors'))).config.inChannels).toBe(2);
    const m = JSON.parse(readFileSync(cond.path, 'utf8'));
    writeFileSync(cond.path, JSON.stringify({ ...m, residual: { ...m.residual, conditioned: false } }));
    await expect(loadBootstrap(cond.path, { device: 'cpu' })).rejects.toThrow(
      /residual.conditioned is false, so residual.safetensors should take C = 1 channels \(x_t\), but it takes 2/,
    );
  }, 600_000); // a hang limit for a loaded machine, not a speed target
});
