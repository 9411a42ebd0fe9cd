// Ambient Diffusion end to end on the CPU: a tiny training run that learns (its loss falls), resumes
// exactly, and samples with fixed further-corrupted masks; the CLI trains, records the masks' law in
// the checkpoint and `kintsugi sample` uses it; operators other than masks are refused.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { corruptDataset, Generator, NoiseSchedule, sample, tensor, UNet, type UNetConfig } from '../../lib/index.ts';
import { ambientMaskLaw, trainAmbient } from '../../lib/ambient/train.ts';
import { ambientDenoiser, ambientLawOf, ambientSamplingMasks } from '../../lib/ambient/sample.ts';
import { readCheckpoint } from '../../lib/checkpoint.ts';
import { blobs } from '../helpers.ts';
import { runCli } from '../support/node.ts';

const config: UNetConfig = { inChannels: 2, outChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
const corruption = { kind: 'mask' as const, patch: 2, p: 0.4 };

describe('trainAmbient', () => {
  it('learns from masked images, resumes exactly, and samples with fixed masks', async () => {
    const set = await corruptDataset(blobs(256, 3).images, [256, 1, 8, 8], { corruption, sigma0: 0, seed: 4, device: 'cpu' });
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-ambient-'));
    const path = join(dir, 'a.safetensors');
    const base = {
      measurements: set,
      batchSize: 16,
      seed: 5,
      optimizer: { lr: 2e-3, warmupSteps: 5 },
      emaDecay: 0,
      ambient: { delta: 0.1 },
    };
    const model = new UNet(config, { device: 'cpu', seed: 1 });
    const whole = await trainAmbient({ ...base, model, steps: 60 });
    const mean = (a: { loss: number }[]) => a.reduce((s, l) => s + l.loss, 0) / a.length;
    // The loss of the first steps (an untrained network) against the last: it must have learned.
    expect(mean(whole.losses.slice(-10))).toBeLessThan(0.5 * mean(whole.losses.slice(0, 10)));

    const short = { ...base, ambient: { delta: 0.1 } };
    const w6 = await trainAmbient({ ...short, model: new UNet(config, { device: 'cpu', seed: 1 }), steps: 6 });
    await trainAmbient({ ...short, model: new UNet(config, { device: 'cpu', seed: 1 }), steps: 3, checkpoint: { path, every: 3 } });
    const resumed = await trainAmbient({ ...short, model: new UNet(config, { device: 'cpu', seed: 9 }), steps: 6, resume: path });
    expect(resumed.losses.map((l) => l.loss)).toEqual(w6.losses.slice(3).map((l) => l.loss));
    const ck = await readCheckpoint(path);
    expect(ck.prediction).toBe('x0');
    expect(ambientLawOf(ck.metadata)).toEqual({ p: 0.4, maskPatch: 2, delta: 0.1, patch: 1 });

    // Sampling masks follow the law: keep rate (1 - p)(1 - delta) = 0.54.
    const law = ambientMaskLaw(set, { delta: 0.1 });
    const masks = ambientSamplingMasks(512, [1, 8, 8], law, 7);
    const kept = masks.reduce((s, v) => s + v, 0) / masks.length;
    expect(Math.abs(kept - 0.54)).toBeLessThan(0.02);
    const m = tensor(masks.subarray(0, 4 * 64), [4, 1, 8, 8], { device: 'cpu' });
    const y = await sample(ambientDenoiser(model, m), {
      schedule: new NoiseSchedule({ kind: 'linear' }),
      prediction: 'x0',
      shape: [4, 1, 8, 8],
      device: 'cpu',
      steps: 5,
      clip: [-1, 1],
      generator: new Generator(1),
    });
    const v = await y.toArray();
    expect(v.length).toBe(256);
    expect(v.every((u) => Number.isFinite(u) && u >= -1 && u <= 1)).toBe(true);
  }, 1_200_000); // a hang limit, not a speed target: CLI runs under heavy load

  it('refuses operators other than masks and models of the wrong shape', async () => {
    const ba = await corruptDataset(blobs(8, 1).images, [8, 1, 8, 8], {
      corruption: { kind: 'blockaverage', k: 2 },
      sigma0: 0,
      seed: 1,
      device: 'cpu',
    });
    await expect(trainAmbient({ model: new UNet(config, { device: 'cpu' }), measurements: ba, steps: 1, batchSize: 2 })).rejects.toThrow(
      /masked images .* got "blockaverage": use GSURE/,
    );
    const set = await corruptDataset(blobs(8, 1).images, [8, 1, 8, 8], { corruption, sigma0: 0, seed: 1, device: 'cpu' });
    await expect(
      trainAmbient({ model: new UNet({ ...config, inChannels: 1 }, { device: 'cpu' }), measurements: set, steps: 1, batchSize: 2 }),
    ).rejects.toThrow(/need a model with 2 input channels/);
    await expect(
      trainAmbient({ model: new UNet(config, { device: 'cpu' }), measurements: set, steps: 1, batchSize: 2, ambient: { delta: 1 } }),
    ).rejects.toThrow(/ambient.delta: expected a further drop probability in \(0, 1\), got 1/);
  });

  it('kintsugi train --method ambient, then kintsugi sample from its checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-ambient-cli-'));
    const ckpt = join(dir, 'a.safetensors');
    const help = runCli(['train', '--method', 'ambient', '--help']);
    expect(help.stdout).toContain('--delta X');
    const refused = runCli(['train', '--method', 'ambient', '--corruption', 'blockaverage:k=2', '--steps', '1', '--out', ckpt]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--method ambient learns from masked images (--corruption mask:...), got blockaverage');
    const t = runCli([
      'train',
      '--method',
      'ambient',
      '--corruption',
      'mask:patch=4,p=0.4',
      '--delta',
      '0.2',
      '--steps',
      '2',
      '--batch',
      '2',
      '--out',
      ckpt,
    ]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/finished at step 2/);
    const ck = await readCheckpoint(ckpt);
    expect(ck.config.inChannels).toBe(2);
    expect(ck.config.outChannels).toBe(1);
    expect(ambientLawOf(ck.metadata)).toEqual({ p: 0.4, maskPatch: 4, delta: 0.2, patch: 1 });
    const s = runCli(['sample', '--checkpoint', ckpt, '--n', '2', '--steps', '2', '--out', join(dir, 'a.png')]);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stdout).toContain('2 samples');
  }, 1_200_000); // a hang limit, not a speed target: CLI runs under heavy load
});
