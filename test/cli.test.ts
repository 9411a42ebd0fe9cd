// The command line end to end: help texts, errors that say what to do, and a short train + sample
// on the shipped Fashion-MNIST subset.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodePng } from '../lib/data/png.ts';
import { readFileSync } from 'node:fs';
import { root, runCli } from './support/node.ts';

const cli = runCli;

describe('kintsugi CLI', () => {
  it('--help lists the commands, and each command has examples', () => {
    const main = cli(['--help']);
    expect(main.status).toBe(0);
    for (const c of ['demo', 'train', 'sample', 'devices']) expect(main.stdout).toContain(c);
    for (const c of ['demo', 'train', 'sample', 'corrupt']) expect(cli([c, '--help']).stdout).toMatch(/examples?:/);
  });

  it('an unknown command or option is a clear error', () => {
    const r = cli(['fly']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "fly"');
    expect(cli(['train', '--preset', 'huge']).stderr).toContain('--preset: expected tiny16, small32, fmnist32, cifar32, got "huge"');
    expect(cli(['sample']).stderr).toContain('--checkpoint FILE is required');
  });

  it('trains a few steps on the shipped subset, then samples a PNG grid from the checkpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-cli-'));
    const ckpt = join(dir, 'c.safetensors');
    const t = cli(['train', '--steps', '3', '--batch', '2', '--out', ckpt, '--every', '3']);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toContain('running on the CPU');
    expect(t.stdout).toMatch(/finished at step 3/);
    expect(existsSync(ckpt)).toBe(true);
    const out = join(dir, 'grid.png');
    const s = cli(['sample', '--checkpoint', ckpt, '--n', '4', '--steps', '2', '--out', out]);
    expect(s.status, s.stderr).toBe(0);
    const png = decodePng(readFileSync(out));
    expect(png.width).toBeGreaterThan(64);
    expect(png.channels).toBe(1);
  });

  it('corrupt writes a measurement file; train --method gsure learns from it and records x0-prediction', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-cli-gsure-'));
    const m = join(dir, 'm.safetensors');
    const c = cli(['corrupt', '--corruption', 'mask:patch=4,p=0.4', '--sigma0', '0.02', '--seed', '3', '--out', m]);
    expect(c.status, c.stderr).toBe(0);
    expect(c.stdout).toContain('2000 mask measurements of [1,32,32]');
    const { loadMeasurements } = await import('../lib/corruption/dataset.ts');
    const set = await loadMeasurements(m);
    expect(set.sigma0).toBe(0.02);
    expect(set.seed).toBe('3');
    const ckpt = join(dir, 'g.safetensors');
    const t = cli(['train', '--method', 'gsure', '--measurements', m, '--steps', '2', '--batch', '2', '--out', ckpt]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toContain('gsure: 2000 mask measurements (sigma0 0.02)');
    const { readCheckpoint } = await import('../lib/checkpoint.ts');
    const ck = await readCheckpoint(ckpt);
    expect(ck.prediction).toBe('x0');
    expect((ck.schedule as { beta1: number }).beta1).toBeCloseTo(0.02 ** 2, 12); // beta1 = sigma0^2
    const naive = cli([
      'train',
      '--method',
      'naive',
      '--corruption',
      'blockaverage:k=2',
      '--steps',
      '1',
      '--batch',
      '2',
      '--out',
      join(dir, 'n.safetensors'),
    ]);
    expect(naive.status, naive.stderr).toBe(0);
    expect(naive.stdout).toContain('corrupting 2000 images');
  });

  it('k-space training (two channels) samples to a magnitude PNG and a .npy of the complex samples', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-cli-kspace-'));
    const ckpt = join(dir, 'f.safetensors');
    const t = cli([
      'train',
      '--method',
      'gsure',
      '--corruption',
      'fourier:center=4,random=4',
      '--steps',
      '1',
      '--batch',
      '2',
      '--out',
      ckpt,
    ]);
    expect(t.status, t.stderr).toBe(0);
    const out = join(dir, 'k.png');
    const s = cli(['sample', '--checkpoint', ckpt, '--n', '2', '--steps', '2', '--out', out]);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stdout).toContain('magnitudes of 2 complex samples');
    expect(decodePng(readFileSync(out)).channels).toBe(1);
    const { readNpy } = await import('../lib/data/npy.ts');
    const npy = await readNpy(join(dir, 'k.npy'));
    expect(npy.shape).toEqual([2, 2, 32, 32]);
  });

  it('corrupted-data options that cannot work are clear errors', () => {
    expect(cli(['train', '--method', 'gsure']).stderr).toContain('give --corruption SPEC');
    expect(cli(['train', '--corruption', 'mask:p=0.2']).stderr).toContain(
      '--corruption belongs to --method naive or gsure or ambient, not supervised',
    );
    expect(cli(['train', '--method', 'gsure', '--corruption', 'mask:p=0.2', '--prediction', 'eps']).stderr).toContain(
      'GSURE trains an x0-predicting network',
    );
    expect(cli(['train', '--method', 'ambient']).stderr).toContain(
      '--method ambient trains on corrupted measurements: give --corruption SPEC',
    );
    expect(cli(['train', '--method', 'ambiant']).stderr).toContain(
      '--method: expected supervised, naive, gsure, ambient, bootstrap, got "ambiant"',
    );
    expect(cli(['corrupt']).stderr).toContain('--corruption SPEC is required');
  });

  it('devices prints the CUDA status', () => {
    expect(
      execFileSync(
        process.execPath,
        ['--import', pathToFileURL(join(root, 'test/support/register-ts.mjs')).href, join(root, 'lib/cli.ts'), 'devices'],
        { encoding: 'utf8' },
      ),
    ).toMatch(/CUDA: /);
  });
});
