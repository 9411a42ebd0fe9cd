// GSURE refuses measurement sets that never observe some coordinates (issue #16 part 1): the loss is
// blind there, so a model trained on them is garbage on those coordinates. Block averaging with one k
// and one mask shared by every image are refused with the count and the remedy; random per-image masks
// pass; the explicit opt-in trains a model of the observed subspace.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { corruptDataset, MeasurementSet, UNet, type UNetConfig } from '../../lib/index.ts';
import { checkObserved, svdStatistics, trainGsure, unobservedCoordinates } from '../../lib/gsure/train.ts';
import { blobs } from '../helpers.ts';
import { runCli } from '../support/node.ts';

const config: UNetConfig = { inChannels: 1, channels: 8, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
const sigma0 = 0.05;
const base = { batchSize: 4, steps: 2, seed: 1, optimizer: { lr: 1e-3 }, emaDecay: 0 };

describe('GSURE observability check', () => {
  it('block averaging with one operator is refused, naming the unobserved count and the fixes', async () => {
    const set = await corruptDataset(blobs(16, 1).images, [16, 1, 8, 8], {
      corruption: { kind: 'blockaverage', k: 2 },
      sigma0,
      seed: 3,
      device: 'cpu',
    });
    // 8x8 in 2x2 blocks: 16 block means observed, the 3 detail coefficients of each block (48) never.
    expect(unobservedCoordinates(await svdStatistics(set))).toBe(48);
    const run = trainGsure({ ...base, model: new UNet(config, { device: 'cpu', seed: 1 }), measurements: set });
    await expect(run).rejects.toThrow(/48 of the 64 coordinates .* never observed by any of the 16 blockaverage measurements/);
    await expect(trainGsure({ ...base, model: new UNet(config, { device: 'cpu', seed: 1 }), measurements: set })).rejects.toThrow(
      /random per-image masks.*observedSubspaceOnly: true/,
    );
  });

  it('one mask shared by every image is refused; random per-image masks are accepted', async () => {
    const n = 16;
    const one = new Uint8Array(64).fill(1);
    one.fill(0, 0, 8); // the first row is dropped in every image
    const mask = new Uint8Array(n * 64);
    for (let i = 0; i < n; i++) mask.set(one, i * 64);
    const clean = blobs(n, 2).images;
    const y = Float32Array.from(clean, (v, i) => v * mask[i]!);
    const shared = new MeasurementSet({ signalShape: [1, 8, 8], measurements: y, params: { kind: 'mask', mask, maskChannels: 1 }, sigma0 });
    const stats = await svdStatistics(shared);
    expect(() => checkObserved(shared, stats)).toThrow(/8 of the 64 coordinates .* 16 mask measurements.*random mask per image/);
    expect(() => checkObserved(shared, stats, { observedSubspaceOnly: true })).not.toThrow();

    const random = await corruptDataset(blobs(256, 3).images, [256, 1, 8, 8], {
      corruption: { kind: 'mask', patch: 2, p: 0.4 },
      sigma0,
      seed: 4,
      device: 'cpu',
    });
    // P(a 2x2 patch is dropped in all 256 images) = 0.4^256: every coordinate is observed.
    expect(unobservedCoordinates(await svdStatistics(random))).toBe(0);
    const r = await trainGsure({ ...base, model: new UNet(config, { device: 'cpu', seed: 1 }), measurements: random });
    expect(r.losses.every((l) => Number.isFinite(l.loss))).toBe(true);
  });

  it('the opt-in trains on block averages, and its loss ignores the unobserved coordinates', async () => {
    const set = await corruptDataset(blobs(16, 5).images, [16, 1, 8, 8], {
      corruption: { kind: 'blockaverage', k: 2 },
      sigma0,
      seed: 3,
      device: 'cpu',
    });
    const r = await trainGsure({
      ...base,
      model: new UNet(config, { device: 'cpu', seed: 1 }),
      measurements: set,
      observedSubspaceOnly: true,
    });
    expect(r.step).toBe(2);
    expect(r.losses.every((l) => Number.isFinite(l.loss))).toBe(true);
  });

  it('the CLI refuses block averaging with the flag to pass, and trains with --observed-subspace-only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-gsure-observed-'));
    const args = [
      'train',
      '--method',
      'gsure',
      '--corruption',
      'blockaverage:k=2',
      '--steps',
      '1',
      '--batch',
      '2',
      '--out',
      join(dir, 'g.safetensors'),
    ];
    const refused = runCli(args);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/768 of the 1024 coordinates .* never observed by any of the 2000 blockaverage measurements/);
    expect(refused.stderr).toContain('--observed-subspace-only');
    const ok = runCli([...args, '--observed-subspace-only']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/finished at step 1/);
  }, 1_200_000); // a hang limit, not a speed target: CLI runs under heavy load
});
