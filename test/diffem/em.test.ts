// The DiffEM loop on the CPU: the re-corruption law, rounds that hand their reconstructions on, the
// state a run leaves behind, and a run stopped mid-round and resumed that ends exactly where an
// uninterrupted one does.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UNet, type UNetConfig } from '../../lib/unet.ts';
import { randomPatchMask } from '../../lib/corruption/mask.ts';
import { corruptWithMasks, diffem, observationsOf, type DiffemOptions } from '../../lib/diffem/em.ts';
import { corruptDataset } from '../../lib/corruption/dataset.ts';
import { blobs } from '../helpers.ts';

const config: UNetConfig = { inChannels: 3, outChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
const shape = [24, 1, 8, 8] as const;
const clean = blobs(24).images;
const corruption = { p: 0.5, patch: 2, sigma0: 0.05 };
const observations = await corruptWithMasks(clean, shape, corruption, 99n);

function options(extra: Partial<DiffemOptions> = {}): DiffemOptions {
  // Round 0: the observations with the unobserved pixels at the observed mean.
  const mean = observations.y.reduce((s, v) => s + v, 0) / observations.mask.reduce((s, v) => s + v, 0);
  const initial = observations.y.map((v, i) => (observations.mask[i]! ? v : mean));
  return {
    model: new UNet(config, { device: 'cpu', seed: 4 }),
    observations,
    corruption,
    initial,
    rounds: 2,
    stepsPerRound: 8,
    batchSize: 8,
    optimizer: { lr: 1e-3 },
    sampler: { method: 'heun', steps: 4, batchSize: 16 },
    seed: 5,
    ...extra,
  };
}

describe('corruptWithMasks', () => {
  it('keeps x + σ0 z where the fresh mask is 1 and zeros elsewhere', async () => {
    const q = await corruptWithMasks(clean, shape, { p: 0.3, patch: 1, sigma0: 0 }, 7n);
    const mask = randomPatchMask(24, [8, 8], { p: 0.3, patch: 1, seed: 7n });
    expect([...q.mask]).toEqual([...mask]);
    for (let i = 0; i < clean.length; i++) expect(q.y[i]! + 0).toBe(mask[i] ? clean[i] : 0); // + 0: a dropped negative pixel is -0
    const noisy = await corruptWithMasks(clean, shape, { p: 0.3, sigma0: 0.1 }, 7n);
    let sq = 0;
    let kept = 0;
    for (let i = 0; i < clean.length; i++)
      if (noisy.mask[i]) {
        sq += (noisy.y[i]! - clean[i]!) ** 2;
        kept++;
      } else expect(noisy.y[i]! + 0).toBe(0);
    expect(Math.sqrt(sq / kept)).toBeGreaterThan(0.08);
    expect(Math.sqrt(sq / kept)).toBeLessThan(0.12);
  });

  it('reads the observations of a mask measurement set, and sends other kinds to observationsFrom', async () => {
    const set = await corruptDataset(clean, shape, {
      corruption: { kind: 'mask', p: 0.4, patch: 2 },
      sigma0: 0.02,
      seed: 3,
      device: 'cpu',
    });
    const o = observationsOf(set);
    expect(o.shape).toEqual([24, 1, 8, 8]);
    expect([...o.mask]).toEqual([...(set.params.kind === 'mask' ? set.params.mask : [])]);
    expect(o.y).toBe(set.measurements);
    const ba = await corruptDataset(clean, shape, { corruption: { kind: 'blockaverage', k: 2 }, sigma0: 0.02, seed: 3, device: 'cpu' });
    expect(() => observationsOf(ba)).toThrow(/for kind blockaverage use observationsFrom\(set\)/);
  });
});

describe('diffem', () => {
  it('runs its rounds, each starting from the last reconstructions, and leaves its state behind', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kintsugi-diffem-')), 'not', 'yet'); // created on demand
    const seen: number[] = [];
    const o = options({ dir, onRound: (r) => void seen.push(r.round) });
    const r = await diffem(o);
    expect(seen).toEqual([1, 2]);
    expect(r.rounds.map((x) => x.round)).toEqual([1, 2]);
    expect(r.reconstructions.every(Number.isFinite)).toBe(true);
    expect([...r.reconstructions]).not.toEqual([...o.initial]);
    for (const f of ['state.json', 'round-1.npy', 'round-2.npy', 'round-1.safetensors', 'round-2.safetensors'])
      expect(existsSync(join(dir, f))).toBe(true);
    // Asking for one more round continues from round 2.
    const more = await diffem({ ...options({ dir }), rounds: 3 });
    expect(more.rounds.map((x) => x.round)).toEqual([3]);
  });

  it('a run stopped in the middle of a round and resumed ends exactly where an uninterrupted run does', async () => {
    const whole = await diffem(options());
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-diffem-'));
    const controller = new AbortController();
    const stopped = await diffem(
      options({ dir, signal: controller.signal, onProgress: (round, p) => round === 2 && p.step >= 3 && controller.abort() }),
    );
    expect(stopped.aborted).toBe(true);
    expect(stopped.rounds.map((x) => x.round)).toEqual([1]);
    const resumed = await diffem(options({ dir, model: new UNet(config, { device: 'cpu', seed: 77 }) }));
    expect(resumed.rounds.map((x) => x.round)).toEqual([2]);
    expect([...resumed.reconstructions]).toEqual([...whole.reconstructions]);
  });

  it('says what is wrong with its input or its state directory', async () => {
    await expect(diffem(options({ initial: new Float32Array(3) }))).rejects.toThrow(/initial: expected 1536 values/);
    await expect(diffem(options({ rounds: 0 }))).rejects.toThrow(/rounds must be a positive integer/);
    await expect(diffem(options({ model: new UNet({ ...config, inChannels: 2 }, { device: 'cpu' }) }))).rejects.toThrow(/inChannels 3/);
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-diffem-'));
    writeFileSync(join(dir, 'state.json'), '{"format": "kintsugi-diffem-1", "round": 1, "shape": [5, 1, 8, 8]}');
    await expect(diffem(options({ dir }))).rejects.toThrow(/belongs to a run on data of shape \[5, 1, 8, 8\]/);
    writeFileSync(join(dir, 'state.json'), 'not json');
    await expect(diffem(options({ dir }))).rejects.toThrow(/is not a DiffEM state file/);
  });
});
