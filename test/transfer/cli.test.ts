// `kintsugi transfer` end to end on tiny runs: pre-training on the built-in Langevin sources and on npy
// task files, fine-tuning with h frozen (h's bytes in the two checkpoints must be equal) and from
// scratch, the evaluation, resume, and the errors for options that cannot work.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../lib/data/npy.ts';
import { readSafetensors } from '../../lib/safetensors.ts';
import { parseDataSpec } from '../../lib/transfer/data.ts';
import { runCli } from '../support/node.ts';
import { testValues } from '../helpers.ts';

// Each call starts a Node process that loads the TypeScript sources (seconds; much more on a loaded machine).
const SLOW = 600_000;
const tiny = ['--hidden', '8', '--encoder-depth', '2', '--head-depth', '2', '--rep-dim', '3'];
const hBytes = async (path: string) => {
  const f = await readSafetensors(path);
  return Buffer.concat([...f.tensors].filter(([k]) => k.startsWith('h.')).map(([, e]) => Buffer.from(e.data.buffer)));
};

describe('kintsugi transfer', () => {
  it(
    'pretrains on the Langevin sources, fine-tunes with h frozen, trains the baseline, evaluates',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kintsugi-transfer-cli-'));
      const pre = join(dir, 'pre.safetensors');
      const r = runCli(['transfer', 'pretrain', '--data', 'langevin', '--n', '20', '--steps', '6', '--batch', '8', '--out', pre, ...tiny]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain(`done at step 6: ${pre} (h and 10 heads)`);
      const file = await readSafetensors(pre);
      expect(file.tensors.has('heads.9.1.bias')).toBe(true);
      expect(file.tensors.get('h.0.weight')!.shape).toEqual([8, 100]);

      const ft = join(dir, 'ft.safetensors');
      const f = runCli(['transfer', 'finetune', '--from', pre, '--data', 'langevin:beta=5.5', '--m', '5', '--steps', '4', '--out', ft]);
      expect(f.stderr).toBe('');
      expect(f.stdout).toContain(`h frozen from ${pre}`);
      expect((await hBytes(ft)).equals(await hBytes(pre))).toBe(true);
      const sc = join(dir, 'scratch.safetensors');
      const s = runCli([
        'transfer',
        'finetune',
        '--from',
        pre,
        '--data',
        'langevin:beta=5.5',
        '--m',
        '5',
        '--steps',
        '4',
        '--scratch',
        '--out',
        sc,
      ]);
      expect(s.stdout).toContain('h and f_0 from scratch');
      expect((await hBytes(sc)).equals(await hBytes(pre))).toBe(false);

      const e = runCli([
        'transfer',
        'eval',
        '--model',
        ft,
        '--data',
        'langevin:beta=5.5',
        '--test',
        '3',
        '--samples',
        '2',
        '--sample-steps',
        '3',
      ]);
      expect(e.stderr).toBe('');
      expect(e.stdout).toMatch(/per-value MSE of the posterior samples against x: [0-9.]+/);
      expect(e.stdout).toMatch(/‖posterior mean − x‖² per condition: [0-9.]+/);

      // a second pretrain call with --resume and more steps continues from step 6
      const again = runCli([
        'transfer',
        'pretrain',
        '--data',
        'langevin',
        '--n',
        '20',
        '--steps',
        '8',
        '--batch',
        '8',
        '--out',
        pre,
        '--resume',
        ...tiny,
      ]);
      expect(again.stderr).toBe('');
      expect((await readSafetensors(pre)).metadata.step).toBe('8');
    },
    SLOW,
  );

  it(
    'reads source tasks and a target from .npy files',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kintsugi-transfer-npy-'));
      const src = join(dir, 'src');
      mkdirSync(src);
      for (let k = 0; k < 2; k++) {
        await writeNpy(join(src, `x-${k}.npy`), { shape: [12, 4], data: testValues(48, k) });
        await writeNpy(join(src, `y-${k}.npy`), { shape: [12, 6], data: testValues(72, 10 + k) });
      }
      const pre = join(dir, 'pre.safetensors');
      const r = runCli(['transfer', 'pretrain', '--data', `npy:${src}`, '--steps', '3', '--batch', '4', '--out', pre, ...tiny]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('(h and 2 heads)');
      const ft = join(dir, 'ft.safetensors');
      const f = runCli([
        'transfer',
        'finetune',
        '--from',
        pre,
        '--data',
        `npy:${join(src, 'x-0.npy')},${join(src, 'y-0.npy')}`,
        '--m',
        '7',
        '--steps',
        '2',
        '--out',
        ft,
      ]);
      expect(f.stderr).toBe('');
      const bad = runCli([
        'transfer',
        'finetune',
        '--from',
        pre,
        '--data',
        `npy:${join(src, 'x-0.npy')},${join(src, 'y-0.npy')}`,
        '--m',
        '50',
        '--steps',
        '2',
        '--out',
        ft,
      ]);
      expect(bad.stderr).toContain('--m 50, but --data has only 12 pairs');
    },
    SLOW,
  );

  it(
    'says what is wrong with its options',
    () => {
      expect(runCli(['transfer', 'pretrain']).stderr).toContain('--data is required');
      expect(runCli(['transfer', 'pretrain', '--data', 'langevin:beta=2', '--out', 'x']).stderr).toContain('--data names the sources');
      expect(runCli(['transfer', 'frobnicate', '--data', 'langevin']).stderr).toContain('unknown subcommand "frobnicate"');
      expect(runCli(['transfer', '--help']).stdout).toContain('kintsugi transfer finetune --from PRE.safetensors');
      expect(() => parseDataSpec('mnist:digit=12')).toThrow(/digit must be 0\.\.9/);
      expect(() => parseDataSpec('cifar')).toThrow(/expected langevin\[:beta=B\], mnist\[:digit=D\]/);
    },
    SLOW,
  );
});
