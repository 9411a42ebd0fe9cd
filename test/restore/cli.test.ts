// `kintsugi restore` end to end on tiny 8x8 data: the files it writes (and their shapes), complex k-space
// data shown as magnitudes, and the errors it gives before any work.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpoint, saveCheckpoint } from '../../lib/checkpoint.ts';
import { corruptDataset, saveMeasurements } from '../../lib/corruption/dataset.ts';
import { readNpy, writeNpy } from '../../lib/data/npy.ts';
import { readPng } from '../../lib/data/png.ts';
import { UNet } from '../../lib/unet.ts';
import { blobs } from '../helpers.ts';
import { runCli } from '../support/node.ts';

const dir = mkdtempSync(join(tmpdir(), 'kintsugi-restore-cli-'));
const { images } = blobs(6);

async function model(channels: number, path: string) {
  using net = new UNet(
    { inChannels: channels, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [], resolution: 8, zeroInit: false },
    { device: 'cpu', seed: 2 },
  );
  await saveCheckpoint(path, net, { prediction: 'eps', schedule: { kind: 'linear' } });
}

describe('kintsugi restore', () => {
  it('writes mean, std and samples (.npy and PNG) and the side-by-side grid with the clean column', async () => {
    await model(1, join(dir, 'm1.safetensors'));
    const set = await corruptDataset(images, [6, 1, 8, 8], {
      corruption: { kind: 'mask', patch: 2, p: 0.4 },
      sigma0: 0.05,
      seed: 1,
      device: 'cpu',
    });
    await saveMeasurements(join(dir, 'mask.safetensors'), set);
    await writeNpy(join(dir, 'clean.npy'), { shape: [6, 1, 8, 8], data: images });
    const out = join(dir, 'out-mask');
    const r = runCli([
      'restore',
      '--model',
      join(dir, 'm1.safetensors'),
      '--measurements',
      join(dir, 'mask.safetensors'),
      '--method',
      'mmps',
      '--samples',
      '3',
      '--steps',
      '3',
      '--cg',
      '1',
      '--limit',
      '4',
      '--clean',
      join(dir, 'clean.npy'),
      '--out',
      out,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('restore: 4 mask measurements (sigma0 0.05) with mmps, 3 samples each, on cpu');
    expect((await readNpy(join(out, 'samples.npy'))).shape).toEqual([4, 3, 1, 8, 8]);
    expect((await readNpy(join(out, 'mean.npy'))).shape).toEqual([4, 1, 8, 8]);
    const std = await readNpy(join(out, 'std.npy'));
    expect(std.shape).toEqual([4, 1, 8, 8]);
    expect(Array.from(std.data).some((v) => v > 0)).toBe(true);
    // 4 columns (measurement, restoration, uncertainty, clean) of 8 px with 2 px padding: 4 * 10 + 2 wide; 4 rows.
    const grid = await readPng(join(out, 'side-by-side.png'));
    expect([grid.width, grid.height]).toEqual([42, 42]);
    const samples = await readPng(join(out, 'samples.png'));
    expect([samples.width, samples.height]).toEqual([32, 42]); // K = 3 columns, one row per measurement
    for (const f of ['mean.png', 'std.png']) expect((await readPng(join(out, f))).width).toBeGreaterThan(0);
  }, 120_000);

  it('complex k-space measurements: .npy keeps both channels, the PNGs show magnitudes', async () => {
    await model(2, join(dir, 'm2.safetensors'));
    const complex = new Float32Array(6 * 2 * 64);
    for (let i = 0; i < 6; i++) complex.set(images.subarray(i * 64, (i + 1) * 64), i * 128); // real images, zero imaginary part
    const set = await corruptDataset(complex, [6, 2, 8, 8], {
      corruption: { kind: 'fourier', centerLines: 2, randomLines: 2 },
      sigma0: 0.02,
      seed: 1,
      device: 'cpu',
    });
    await saveMeasurements(join(dir, 'kspace.safetensors'), set);
    const out = join(dir, 'out-kspace');
    const r = runCli([
      'restore',
      '--model',
      join(dir, 'm2.safetensors'),
      '--measurements',
      join(dir, 'kspace.safetensors'),
      '--method',
      'ddrm',
      '--samples',
      '2',
      '--steps',
      '3',
      '--out',
      out,
    ]);
    expect(r.stderr).toBe('');
    expect((await readNpy(join(out, 'mean.npy'))).shape).toEqual([6, 2, 8, 8]);
    const grid = await readPng(join(out, 'side-by-side.png'));
    expect(grid.channels).toBe(1); // one grey magnitude image per tile
    expect([grid.width, grid.height]).toEqual([32, 62]); // 3 columns (no clean images), 6 rows
  }, 120_000);

  it('says what is wrong before doing any work', () => {
    expect(runCli(['restore']).stderr).toContain('restore: --model FILE is required');
    expect(runCli(['restore', '--model', 'm', '--measurements', 's', '--method', 'svd']).stderr).toContain(
      '--method: expected ddrm, dps, pigdm, mmps, got "svd"',
    );
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    // --out under a regular file cannot be created: refused before the model or measurements are read.
    expect(runCli(['restore', '--model', 'missing.safetensors', '--measurements', 'missing', '--out', join(file, 'sub')]).stderr).toMatch(
      /--out .*a-file\/sub: cannot write there/,
    );
  }, 150_000);

  it('kintsugi diffem --e-step mmps runs EM-MMPS, and --warm-start starts DiffEM from its reconstructions', async () => {
    const quick = [
      '--corruption',
      'mask:p=0.3',
      '--limit',
      '8',
      '--steps',
      '2',
      '--batch',
      '4',
      '--rounds',
      '1',
      '--sample-steps',
      '2',
      '--rank',
      '2',
      '--prior-iterations',
      '2',
      '--preset',
      'tiny16',
    ];
    const em = join(dir, 'em-mmps');
    const r = runCli(['diffem', ...quick, '--e-step', 'mmps', '--cg', '1', '--dir', em]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/round 1: PSNR [-0-9.]+ dB/);
    expect((await readCheckpoint(join(em, 'round-1.safetensors'))).config.inChannels).toBe(1); // the unconditional prior
    const warm = runCli(['diffem', ...quick, '--sampler', 'heun', '--warm-start', em, '--dir', join(dir, 'warm')]);
    expect(warm.stderr).toBe('');
    expect(warm.stdout).toContain(`warm start: round 1 of ${em}`);
    expect((await readCheckpoint(join(dir, 'warm', 'round-1.safetensors'))).config.inChannels).toBe(3); // DiffEM's conditional model
    expect(runCli(['diffem', '--corruption', 'mask:p=0.3', '--e-step', 'gibbs']).stderr).toContain(
      '--e-step: expected conditional, mmps or dps, got "gibbs"',
    );
  }, 180_000);
});
