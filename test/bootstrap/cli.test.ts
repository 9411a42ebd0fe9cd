// `kintsugi train --method bootstrap` and `kintsugi sample` of its manifest, end to end on the shipped
// Fashion-MNIST subset (a few steps of tiny models), and the --views grammar.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../lib/data/npy.ts';
import { decodePng } from '../../lib/data/png.ts';
import { testValues } from '../helpers.ts';
import { parseViews } from '../../lib/bootstrap/run.ts';
import { resizedConfig } from '../../lib/unet.ts';
import { runCli } from '../support/node.ts';

const cli = runCli;

describe('bootstrap CLI', () => {
  it('--views grammar, and clear errors', () => {
    expect(parseViews('lowres:4,patch:16')).toEqual({
      lowres: { factor: 4 },
      patch: { size: 16, stride: 8, window: 'hann', positions: false },
    });
    expect(parseViews('patch:8/2+pos@triangle')).toEqual({ patch: { size: 8, stride: 2, window: 'triangle', positions: true } });
    expect(() => parseViews('lowres:4,lowres:2')).toThrow(/each at most once, got "lowres:2"/);
    expect(() => parseViews('crop:8')).toThrow(/--views: expected lowres:R and\/or patch:P/);
    // levels only as deep as the size divides, attention only at a level's size
    expect(
      resizedConfig({ inChannels: 1, channels: 32, mult: [1, 2, 2], resBlocks: 1, attnResolutions: [8], resolution: 32 }, 4, 3, 1),
    ).toMatchObject({
      mult: [1, 2, 2],
      resolution: 4,
      inChannels: 3,
      outChannels: 1,
      attnResolutions: [],
    });
    expect(
      resizedConfig({ inChannels: 1, channels: 32, mult: [1, 2, 2], resBlocks: 1, attnResolutions: [8], resolution: 32 }, 6, 1, 1).mult,
    ).toEqual([1, 2]);
    const r = cli(['train', '--method', 'bootstrap', '--views', 'lowres:4']);
    expect(r.status).toBe(2); // a mistake in the command line
    expect(r.stderr).toContain('--full N or --full-data FILE is required for --method bootstrap');
    expect(cli(['help', 'bootstrap']).stdout).toMatch(/examples:/);
  });

  it('takes separate full, low-resolution and crop sets, and says which one does not fit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-boot-cli-'));
    const npy = async (name: string, shape: number[], seed: number) => {
      const path = join(dir, name);
      await writeNpy(path, {
        shape,
        data: testValues(
          shape.reduce((a, b) => a * b, 1),
          seed,
        ).map((v) => 0.5 * v),
      });
      return path;
    };
    const full = await npy('full.npy', [4, 1, 16, 16], 1);
    const low = await npy('low.npy', [8, 1, 4, 4], 2);
    const crops = await npy('crops.npy', [8, 1, 8, 8], 3);
    const out = join(dir, 'run');
    const args = [
      'train',
      '--method',
      'bootstrap',
      '--views',
      'lowres:4,patch:8',
      '--full-data',
      full,
      '--lowres-data',
      low,
      '--patch-data',
      crops,
      '--steps',
      '2',
      '--batch',
      '2',
      '--preset',
      'tiny16',
      '--n',
      '0',
    ];
    const t = cli([...args, '--out', out]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toContain('data: 4 full-resolution images [1, 16, 16], 8 lowres [1, 4, 4], 8 patches [1, 8, 8]');
    expect(JSON.parse(readFileSync(join(out, 'bootstrap.json'), 'utf8'))).toMatchObject({ full: 4, residual: { conditioned: false } });
    const bad = cli([...args, '--lowres-data', crops, '--out', join(dir, 'bad')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      "--lowres-data: expected images [N, 1, 4, 4] (the full images' [1, 16, 16] pooled by lowres:4), got [8, 1, 8, 8]",
    );
    const pos = cli([
      ...args
        .map((a) => (a === 'lowres:4,patch:8' ? 'patch:8+pos' : a))
        .filter((a, i, all) => a !== '--lowres-data' && all[i - 1] !== '--lowres-data'),
      '--out',
      join(dir, 'pos'),
    ]);
    expect(pos.status).toBe(2);
    expect(pos.stderr).toMatch(/--patch-data: the patch view has position channels/);
    expect(cli([...args, '--residual', 'both', '--out', join(dir, 'r')]).stderr).toContain(
      '--residual: expected unconditioned or conditioned, got "both"',
    );
  }, 600_000);

  it('trains views and residual for a few steps, writes the manifest, and samples from it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-boot-cli-'));
    const t = cli([
      'train',
      '--method',
      'bootstrap',
      '--views',
      'lowres:4,patch:16+pos',
      '--full',
      '8',
      '--steps',
      '2',
      '--batch',
      '2',
      '--preset',
      'tiny16',
      '--n',
      '0',
      '--out',
      dir,
    ]);
    expect(t.status, t.stderr).toBe(0);
    for (const f of ['lowres', 'patch', 'residual']) expect(existsSync(join(dir, `${f}.safetensors`))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(dir, 'bootstrap.json'), 'utf8'));
    expect(manifest).toMatchObject({
      format: 'kintsugi-bootstrap-1',
      full: 8,
      lowres: { factor: 4 },
      patch: { size: 16, stride: 8, positions: true },
    });
    const out = join(dir, 's.png');
    const s = cli(['sample', '--checkpoint', join(dir, 'bootstrap.json'), '--n', '2', '--steps', '3', '--out', out]);
    expect(s.status, s.stderr).toBe(0);
    const png = decodePng(readFileSync(out));
    expect(png.width).toBeGreaterThanOrEqual(32);
  }, 600_000); // a hang limit, not a speed target: generous for a loaded machine
});
