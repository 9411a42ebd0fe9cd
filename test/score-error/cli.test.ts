// The sample-complexity measurement from the shell: kintsugi mixture → train --data FILE.npy →
// kintsugi score-error, and the errors each step gives for input it cannot use.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../lib/data/npy.ts';
import { GaussianMixture, TRAINING_STREAM } from '../../lib/score-error/mixture.ts';
import { runCli } from '../support/node.ts';

const cli = runCli;

describe('kintsugi mixture / score-error', () => {
  it('writes a mixture and its training set, trains on the .npy, and audits the checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-score-'));
    const [mix, data, ck, json] = ['mix.safetensors', 'train.npy', 'ck.safetensors', 'report.json'].map((f) => join(dir, f));
    const m = cli(['mixture', '--out', mix, '--weights', '1,1,0.02', '--samples', '64', '--data', data, '--seed', '3']);
    expect(m.stderr).toBe('');
    expect(m.stdout).toContain('3 components on [1, 16, 16]');
    const mixture = await GaussianMixture.load(mix);
    const npy = await readNpy(data);
    expect(npy.shape).toEqual([64, 1, 16, 16]);
    // The training set is the mixture's TRAINING_STREAM draw, rounded to float32.
    expect([...npy.data]).toEqual([...Float32Array.from(mixture.sample(64, 3, TRAINING_STREAM).x)]);

    const t = cli(['train', '--data', data, '--preset', 'tiny16', '--steps', '3', '--batch', '4', '--out', ck, '--every', '3']);
    expect(t.stderr).toBe('');
    expect(t.stdout).toContain(`64 images from ${data}`);

    const s = cli([
      'score-error',
      '--checkpoint',
      ck,
      '--mixture',
      mix,
      '--delta',
      '0.1',
      '--samples',
      '100',
      '--levels',
      '0,500,999',
      '--json',
      json,
    ]);
    expect(s.stderr).toBe('');
    expect(s.stdout).toMatch(/90 % quantile/);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.dim).toBe(256);
    expect(report.levels.map((l: { t: number }) => l.t)).toEqual([0, 500, 999]);
    for (const l of report.levels) {
      expect(l.samples).toBe(100);
      expect(l.quantile).toBeGreaterThan(0);
      expect(l.quantile).toBeLessThanOrEqual(l.upperBound);
      expect(l.upperBound).toBeLessThanOrEqual(l.max);
    }
  });

  it('says what is wrong with its input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-score-'));
    const mix8 = join(dir, 'mix8.safetensors');
    expect(cli(['mixture', '--out', mix8, '--shape', '1,8,8']).status).toBe(0);
    expect(cli(['mixture']).stderr).toContain('--out FILE is required');
    expect(cli(['mixture', '--out', mix8, '--samples', '10']).stderr).toContain('--samples N and --data FILE.npy go together');
    expect(cli(['mixture', '--out', mix8, '--shape', '1,8']).stderr).toContain('--shape: expected C,H,W');
    expect(cli(['score-error', '--mixture', mix8]).stderr).toContain('--checkpoint FILE and --mixture FILE are required');

    // A checkpoint for 16x16 images against an 8x8 mixture.
    const data = join(dir, 'd.npy');
    const ck = join(dir, 'ck.safetensors');
    await writeNpy(data, { shape: [4, 1, 16, 16], data: new Float32Array(4 * 256).map((_, i) => Math.sin(i)) });
    expect(cli(['train', '--data', data, '--preset', 'tiny16', '--steps', '1', '--batch', '2', '--out', ck]).status).toBe(0);
    expect(cli(['score-error', '--checkpoint', ck, '--mixture', mix8]).stderr).toContain(
      "the mixture's samples are [1, 8, 8] but the model takes [1, 16, 16]",
    );
    expect(cli(['score-error', '--checkpoint', ck, '--mixture', data]).stderr).toMatch(/d\.npy/);

    const bad = join(dir, 'bad.npy');
    await writeNpy(bad, { shape: [4, 16, 16], data: new Float32Array(4 * 256) });
    expect(cli(['train', '--data', bad, '--preset', 'tiny16', '--steps', '1']).stderr).toContain(
      'expected a float32 or float64 array of shape [N, C, H, W], got float32 [4, 16, 16]',
    );
    await writeNpy(bad, { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(NaN) });
    expect(cli(['train', '--data', bad, '--preset', 'tiny16', '--steps', '1']).stderr).toContain('value 0 is NaN');
  });
});
