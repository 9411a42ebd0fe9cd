// `kintsugi diffem` end to end on a few shipped images: round 0, one EM round, the final model, the
// files in --dir, a second call that resumes, and the errors for options that cannot work.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../lib/checkpoint.ts';
import { readNpy } from '../../lib/data/npy.ts';
import { runCli } from '../support/node.ts';

const quick = [
  '--limit',
  '16',
  '--steps',
  '2',
  '--batch',
  '4',
  '--sampler',
  'heun',
  '--sample-steps',
  '2',
  '--rank',
  '2',
  '--prior-iterations',
  '2',
];

describe('kintsugi diffem', () => {
  it('runs round 0 and EM rounds into --dir, trains the final model, and resumes on a second call', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kintsugi-diffem-cli-')), 'run');
    const r = runCli(['diffem', '--corruption', 'mask:p=0.3', '--rounds', '1', '--final-steps', '2', '--dir', dir, ...quick]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('diffem: 16 observations [1, 32, 32], masks p = 0.3 (patch 1), sigma0 0.01');
    expect(r.stdout).toMatch(/round 0 \(Gaussian prior\): PSNR [-0-9.]+ dB against the clean images/);
    expect(r.stdout).toMatch(/round 1: PSNR/);
    for (const f of ['round-0.npy', 'round-0.png', 'round-1.npy', 'round-1.png', 'round-1.safetensors', 'state.json', 'final.safetensors'])
      expect(existsSync(join(dir, f))).toBe(true);
    expect((await readNpy(join(dir, 'round-1.npy'))).shape).toEqual([16, 1, 32, 32]);
    const final = await readCheckpoint(join(dir, 'final.safetensors'));
    expect(final.config.inChannels).toBe(1); // unconditional
    expect((await readCheckpoint(join(dir, 'round-1.safetensors'))).config.inChannels).toBe(3); // x̃, y, mask

    const again = runCli(['diffem', '--corruption', 'mask:p=0.3', '--rounds', '2', '--dir', dir, ...quick]);
    expect(again.stderr).toBe('');
    expect(again.stdout).not.toMatch(/round 1:/);
    expect(again.stdout).toMatch(/round 2: PSNR/);
  });

  it('takes k-space and block-averaged measurements', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kintsugi-diffem-cli-')), 'run');
    const r = runCli(['diffem', '--corruption', 'fourier:center=4,random=16', '--rounds', '1', '--dir', dir, ...quick]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(
      'diffem: 16 observations [2, 32, 32], k-space lines (4 centre + 16 random), sigma0 0.01, conditioned on A⁺y; 1 rounds of 2 steps of batch 4, EMA 0.9999',
    );
    expect(r.stdout).toMatch(/note: EMA 0.9999 averages over about 10000 steps/);
    expect(r.stdout).toMatch(/round 1: PSNR [-0-9.]+ dB against the clean signals/);
    expect((await readNpy(join(dir, 'round-1.npy'))).shape).toEqual([16, 2, 32, 32]);
    expect((await readCheckpoint(join(dir, 'round-1.safetensors'))).config.inChannels).toBe(5); // x̃ (2), A⁺y (2), the k-space rows
    const ba = join(mkdtempSync(join(tmpdir(), 'kintsugi-diffem-cli-')), 'run');
    const b = runCli([
      'diffem',
      '--corruption',
      'blockaverage:k=2',
      '--unobserved',
      'zero',
      '--condition',
      'adjoint',
      '--rounds',
      '1',
      '--dir',
      ba,
      ...quick,
    ]);
    expect(b.stderr).toBe('');
    expect(b.stdout).toContain('round 0: 768 of 1024 coordinates are never observed and stay at 0 (--unobserved zero)');
    expect(b.stdout).toMatch(/round 1: PSNR/);
  });

  it('says what is wrong with its options', () => {
    expect(runCli(['diffem']).stderr).toContain('give either --measurements FILE (masked measurements) or --corruption SPEC');
    expect(runCli(['diffem', '--corruption', 'mask:p=0.3', '--condition', 'both']).stderr).toContain(
      '--condition: expected pinv or adjoint, got "both"',
    );
    expect(runCli(['diffem', '--corruption', 'mask:p=0.3', '--ema', '1']).stderr).toContain('--ema: expected a decay in [0, 1), got 1');
    // Block averaging never observes the detail within blocks: refused unless the user opts in.
    const ba = join(mkdtempSync(join(tmpdir(), 'kintsugi-diffem-cli-')), 'run');
    expect(runCli(['diffem', '--corruption', 'blockaverage:k=2', '--dir', ba, ...quick]).stderr).toMatch(
      /coordinate \d+ is never observed in the 16 samples \(768 of 1024 coordinates/,
    );
    expect(runCli(['diffem', '--help']).stdout).toMatch(/example:/);
    // Too few images for the masks: some pixel is never observed, so round 0 cannot estimate it.
    expect(
      runCli([
        'diffem',
        '--corruption',
        'mask:p=0.9',
        '--limit',
        '4',
        '--dir',
        join(mkdtempSync(join(tmpdir(), 'kintsugi-diffem-cli-')), 'run'),
      ]).stderr,
    ).toMatch(/coordinate \d+ is never observed in the 4 samples/);
  });
});
