// The command line end to end: help texts, errors that say what to do, and a short train + sample
// on the shipped Fashion-MNIST subset.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodePng } from '../lib/data/png.ts';
import { readFileSync } from 'node:fs';
import { root } from './support/node.ts';

const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', pathToFileURL(join(root, 'test/support/register-ts.mjs')).href, join(root, 'lib/cli.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, KINTSUGI_DEVICE: 'cpu', ...env },
    timeout: 120_000,
  });

describe('kintsugi CLI', () => {
  it('--help lists the commands, and each command has examples', () => {
    const main = cli(['--help']);
    expect(main.status).toBe(0);
    for (const c of ['demo', 'train', 'sample', 'devices']) expect(main.stdout).toContain(c);
    for (const c of ['demo', 'train', 'sample']) expect(cli([c, '--help']).stdout).toMatch(/examples?:/);
  });

  it('an unknown command or option is a clear error', () => {
    const r = cli(['fly']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "fly"');
    expect(cli(['train', '--preset', 'huge']).stderr).toContain('--preset: expected tiny16, fmnist32, cifar32 or small32, got "huge"');
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

  it('devices prints the CUDA status', () => {
    expect(execFileSync(process.execPath, ['--import', pathToFileURL(join(root, 'test/support/register-ts.mjs')).href, join(root, 'lib/cli.ts'), 'devices'], { encoding: 'utf8' })).toMatch(/CUDA: /);
  });
});
