// DiffEM's loop with a posterior-sampling E-step (EM-MMPS, DPS-EM) on tiny data, and the warm start of
// a conditional DiffEM run from EM-MMPS's reconstructions.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UNet, type UNetConfig } from '../../lib/unet.ts';
import { corruptWithMasks, diffem, lastReconstructions, type DiffemOptions } from '../../lib/diffem/em.ts';
import { blobs } from '../helpers.ts';

const prior: UNetConfig = { inChannels: 1, outChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
const conditional: UNetConfig = { ...prior, inChannels: 3 };
const shape = [12, 1, 8, 8] as const;
const clean = blobs(12).images;
const corruption = { p: 0.5, patch: 2, sigma0: 0.05 };
const observations = await corruptWithMasks(clean, shape, corruption, 99n);
const mean = observations.y.reduce((s, v) => s + v, 0) / observations.mask.reduce((s, v) => s + v, 0);
const initial = observations.y.map((v, i) => (observations.mask[i]! ? v : mean));

const options = (eStep: DiffemOptions['eStep'], extra: Partial<DiffemOptions> = {}): DiffemOptions => ({
  model: new UNet(eStep === 'conditional' ? conditional : prior, { device: 'cpu', seed: 4 }),
  eStep,
  observations,
  corruption,
  initial,
  rounds: 2,
  stepsPerRound: 6,
  batchSize: 6,
  optimizer: { lr: 1e-3 },
  sampler: { steps: 4, batchSize: 12, cgIterations: 1, method: 'heun' },
  seed: 5,
  ...extra,
});

describe('EM with a posterior-sampling E-step', () => {
  for (const eStep of ['mmps', 'dps'] as const)
    it(`${eStep}: trains the unconditional prior and restores with it, round after round`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `kintsugi-em-${eStep}-`));
      const seen: number[] = [];
      const o = options(eStep, { dir, onRound: (r) => void seen.push(r.round) });
      const r = await diffem(o);
      expect(seen).toEqual([1, 2]);
      expect(r.reconstructions.length).toBe(initial.length);
      expect(r.reconstructions.every(Number.isFinite)).toBe(true);
      // MMPS ends on its clipped estimate; DPS adds its last gradient step after the clipped estimate.
      if (eStep === 'mmps') expect(r.reconstructions.every((v) => v >= -1 && v <= 1)).toBe(true);
      expect([...r.reconstructions]).not.toEqual([...initial]);
      expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).eStep).toBe(eStep);
      expect(existsSync(join(dir, 'round-2.safetensors'))).toBe(true);
      // The same directory with another E-step is refused rather than mixed.
      await expect(diffem({ ...options('conditional'), dir, rounds: 3 })).rejects.toThrow(
        new RegExp(`run with the ${eStep} E-step, this one uses conditional`),
      );
      // Seeded: the same options give the same reconstructions.
      const again = await diffem(options(eStep));
      expect([...again.reconstructions]).toEqual([...r.reconstructions]);
    }, 60_000);

  it('refuses a conditional UNet for the mmps E-step, and an unknown E-step', async () => {
    await expect(diffem({ ...options('mmps'), model: new UNet(conditional, { device: 'cpu' }) })).rejects.toThrow(
      /needs an unconditional UNet/,
    );
    await expect(diffem(options('foo' as never))).rejects.toThrow(/eStep: expected conditional, mmps or dps/);
  });

  it('DiffEM warm-started from EM-MMPS starts from its last reconstructions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-em-warm-'));
    const em = await diffem(options('mmps', { dir, rounds: 1 }));
    const warm = await lastReconstructions(dir, shape);
    expect(warm.round).toBe(1);
    expect([...warm.x]).toEqual([...em.reconstructions]);
    const r = await diffem(options('conditional', { initial: warm.x, rounds: 1 }));
    expect(r.rounds.map((x) => x.round)).toEqual([1]);
    expect(r.reconstructions.every(Number.isFinite)).toBe(true);
  }, 60_000);
});
