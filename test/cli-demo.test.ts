// `kintsugi demo` end to end at a token size (1 fine-tuning step, 2 sampling steps): it learns from the
// corrupted measurements through GSURE, shows progress in every phase, and writes its picture (inputs |
// samples), the samples, a log-scale loss curve with a smoothed line, and the classifier's verdict.
// Whether it reaches the quality bar is measured by a full run (docs/demo.md), not here.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodePng } from '../lib/data/png.ts';
import { saveCheckpoint } from '../lib/checkpoint.ts';
import { atClassifierSize, atResolution, DEMO_UNET_32, demoResolution, demoUNet, double, halve } from '../lib/demo/recipe.ts';
import { UNet } from '../lib/unet.ts';
import { runCli } from './support/node.ts';

describe('kintsugi demo', () => {
  it('writes demo.png, samples.npy, loss.svg and summary.json, with progress in every phase', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'kintsugi-demo-')), 'demo');
    const r = runCli(['demo', '--steps', '1', '--sample-steps', '2', '--restore-steps', '3', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('the model sees only these');
    expect(r.stdout).toContain('Fashion-MNIST images at 32x32'); // the shipped prior is a 32x32 network
    expect(r.stdout).toMatch(/demo train step 1\/1/);
    expect(r.stdout).toMatch(/demo sampling: DDIM step 2\/2/);
    expect(r.stdout).toContain('sampling 64 images with uniform-attention guidance 3'); // the default
    expect(r.stdout).toMatch(/demo restoring the inputs: DDRM step 3\/3/);
    expect(r.stdout).toMatch(/samples classified as a garment with confidence >= 0.8: \d+ of 64/);
    const png = decodePng(readFileSync(join(out, 'demo.png')));
    // three panels (inputs | samples | restorations) of 8x8 tiles of 32 pixels with 2-pixel gaps, 8 pixels apart
    expect([png.width, png.height, png.channels]).toEqual([3 * (8 * 34 + 2) + 2 * 8, 8 * 34 + 2, 3]);
    const svg = readFileSync(join(out, 'loss.svg'), 'utf8');
    expect(svg).toContain('loss (log scale)');
    expect(svg.match(/<polyline/g)?.length).toBe(2); // the raw losses and the smoothed line
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      confidentShare: number;
      restoredConfidentShare: number;
      fdFmnist: number;
      prior: boolean;
    };
    expect(summary.prior).toBe(true);
    expect(summary.confidentShare).toBeGreaterThanOrEqual(0);
    expect(summary.confidentShare).toBeLessThanOrEqual(1);
    expect(Number.isFinite(summary.fdFmnist)).toBe(true);
    const { readNpy } = await import('../lib/data/npy.ts');
    expect((await readNpy(join(out, 'samples.npy'))).shape).toEqual([64, 1, 32, 32]);
    // The restorations agree with the inputs where a pixel was observed (DDRM pulls those coordinates to
    // the measurement; noise sigma0 0.05 and 3 steps leave them within a loose bound), unlike the samples.
    const restored = await readNpy(join(out, 'restored.npy'));
    expect(restored.shape).toEqual([64, 1, 32, 32]);
    const { demoMeasurements } = await import('../lib/demo/recipe.ts');
    const set = await demoMeasurements(1, undefined, 32); // the demo's own measurements: its first 64 are the inputs restored
    const mask = (set.params as { mask: Uint8Array }).mask;
    let sum = 0,
      count = 0;
    for (let i = 0; i < 64 * 1024; i++) if (mask[i]) ((sum += Math.abs(restored.data[i]! - set.measurements[i]!)), count++);
    expect(sum / count).toBeLessThan(0.15);
    expect(summary.restoredConfidentShare).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
  }, 600_000); // minutes under heavy load (the machine shared with other jobs); seconds on an idle one

  // A 16x16 prior (scripts/train-demo-prior.ts --resolution 16; the demo shipped one until 2026-12-06):
  // the demo follows the prior's network, so its samples, restorations and measurements are 16x16, and
  // the picture doubles them to the same layout.
  it('runs at 16x16 from a 16x16 prior given by --prior, and refuses what does not fit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-demo16-'));
    const priorFile = join(dir, 'prior16.safetensors');
    const net = new UNet(demoUNet(16), { device: 'cpu', seed: 5n });
    await saveCheckpoint(priorFile, net, { step: 0, prediction: 'x0', dtype: 'BF16' });
    net.dispose();
    const out = join(dir, 'demo');
    const r = runCli([
      'demo',
      '--prior',
      priorFile,
      '--steps',
      '1',
      '--sample-steps',
      '1',
      '--restore-steps',
      '1',
      '--ema',
      '0.9',
      '--guidance',
      '1',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Fashion-MNIST images at 16x16');
    expect(r.stdout).toContain(`Fine-tuning the prior ${priorFile}`);
    const { readNpy } = await import('../lib/data/npy.ts');
    expect((await readNpy(join(out, 'samples.npy'))).shape).toEqual([64, 1, 16, 16]);
    expect((await readNpy(join(out, 'restored.npy'))).shape).toEqual([64, 1, 16, 16]);
    const png = decodePng(readFileSync(join(out, 'demo.png')));
    expect([png.width, png.height]).toEqual([3 * (8 * 34 + 2) + 2 * 8, 8 * 34 + 2]); // the same layout as at 32x32
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      resolution: number;
      fdReference: string;
      emaDecay: number;
      lr: number;
      guidance: number;
    };
    expect(summary.resolution).toBe(16);
    expect([summary.emaDecay, summary.lr, summary.guidance]).toEqual([0.9, 1e-4, 1]); // as given; the rate from a prior by default
    expect(r.stdout).not.toContain('guidance'); // --guidance 1: plain DDIM
    expect(summary.fdReference).toBe('the 2000 shipped images averaged to 16x16');

    // Refusals name the flag or the file, and create no output folder.
    const refused = (args: string[], message: string) => {
      const o = join(dir, `refused-${args.length}-${message.length}`);
      const q = runCli(['demo', ...args, '--out', o]);
      expect(q.status).not.toBe(0);
      expect(q.stderr).toContain(message);
      expect(existsSync(o)).toBe(false);
    };
    refused(['--prior', priorFile, '--resolution', '32'], `--resolution 32, but the prior ${priorFile} is a 16x16 network`);
    refused(['--no-prior', '--resolution', '24'], '--resolution: the demo runs at 16x16 or 32x32, got 24');
    refused(['--prior', priorFile, '--no-prior'], '--prior and --no-prior exclude each other');
    refused(['--ema', '1'], '--ema: expected a decay in [0, 1), got "1"');
    refused(['--ema', 'fast'], '--ema: expected a decay in [0, 1), got "fast"');
    refused(['--ema', ' '], '--ema: expected a decay in [0, 1), got " "');
    refused(['--guidance', '-1'], '--guidance: expected a number >= 0, got -1');
    refused(['--prior', join(dir, 'none.safetensors')], 'none.safetensors: no such file');
    const notAPrior = join(dir, 'junk.safetensors');
    writeFileSync(notAPrior, 'not a checkpoint');
    refused(['--prior', notAPrior], 'junk.safetensors');
  }, 600_000);

  it('sizes the images for its resolution: 32x32 as shipped, 16x16 averaged and doubled for the classifier', () => {
    const x = Float32Array.from({ length: 2 * 32 * 32 }, (_, i) => (i % 97) / 97);
    expect(atResolution(x, 2, 32)).toBe(x);
    expect(Array.from(atResolution(x, 2, 16))).toEqual(Array.from(halve(x, 2)));
    const y = Float32Array.from({ length: 2 * 16 * 16 }, (_, i) => i);
    expect(Array.from(atClassifierSize(y, 2, 16))).toEqual(Array.from(double(y, 2, 16)));
    expect(atClassifierSize(x, 2, 32)).toBe(x);
    expect(demoUNet(16).resolution).toBe(16);
    expect(demoUNet(32)).toEqual(DEMO_UNET_32);
    expect(demoResolution(32, 'x')).toBe(32);
    expect(() => demoResolution(28, '--resolution')).toThrow('--resolution: the demo runs at 16x16 or 32x32, got 28');
  });

  it('halves by 2x2 means and doubles by repetition', () => {
    // a 4x4 image with values 0..15: block means computed by hand
    const x = Float32Array.from({ length: 16 }, (_, i) => i);
    expect(Array.from(halve(x, 1, 4))).toEqual([2.5, 4.5, 10.5, 12.5]);
    expect(Array.from(double(Float32Array.from([1, 2, 3, 4]), 1, 2))).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });
});
