// The posterior samplers against the closed-form posterior of a Gaussian prior (test/restore/setup.ts):
// moments within Monte-Carlo error, noiseless masks reproduced exactly, seeds, cancellation, memory,
// and every method driven by a UNet on every operator kind.
import { describe, expect, it } from 'vitest';
import { memoryStats, NoiseSchedule, synchronize, tensor, UNet } from '../../lib/index.ts';
import { BlockAverageOperator } from '../../lib/corruption/block-average.ts';
import { FourierOperator } from '../../lib/corruption/fourier.ts';
import { MaskOperator } from '../../lib/corruption/mask.ts';
import type { Degradation } from '../../lib/corruption/operator.ts';
import { unetPrior } from '../../lib/restore/denoiser.ts';
import { denseOperator, gaussianPosterior } from '../../lib/restore/gaussian.ts';
import { restore } from '../../lib/restore/restore.ts';
import { RESTORE_METHODS } from '../../lib/restore/samplers.ts';
import { hasCuda } from '../helpers.ts';
import { D, denoiser, sampleMoments, SHAPE, testPrior } from './setup.ts';

/**
 * Bytes in use once queued work has finished: synchronize(), then readings 10 ms apart until two agree,
 * so a free that trails the queue is not mistaken for a leak (a leaked tensor is never freed, so leaks
 * still show). Every temporary here is disposed explicitly: one left to the garbage collector once
 * freed itself in the middle of a check.
 */
async function settledInUse(device: string): Promise<number> {
  await synchronize(device);
  let last = memoryStats(device).inUse;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 10));
    const now = memoryStats(device).inUse;
    if (now === last) return now;
    last = now;
  }
  return last;
}

/** Five observed pixels of the 4x4 image. */
const MASK = Uint8Array.from([1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0]);
const maskOp = (device = 'cpu') => new MaskOperator(MASK, [1, 1, 4, 4], SHAPE, { device });

/** A measurement of a fixed signal through `op` (row 0) with deterministic noise of level sigma0 on the data-carrying coordinates, and the exact posterior. */
async function problem(op: Degradation, sigma0: number) {
  const { matrix, rows } = await denseOperator(op);
  const x = tensor(
    Float32Array.from({ length: D }, (_, i) => Math.sin(i)),
    [1, ...SHAPE],
  );
  const ax = op.apply(x);
  const clean = await ax.toArray();
  x.dispose();
  ax.dispose();
  const y = new Float32Array(clean.length);
  for (const r of rows) y[r] = clean[r]! + sigma0 * Math.cos(3 * r);
  return {
    y,
    rows,
    posterior:
      sigma0 > 0
        ? gaussianPosterior(
            testPrior(),
            matrix,
            rows.map((r) => y[r]!),
            sigma0,
          )
        : null,
  };
}

describe('MMPS on a Gaussian prior', () => {
  it('reproduces the closed-form posterior mean and covariance within Monte-Carlo error', async () => {
    const op = maskOp();
    const sigma0 = 0.1;
    const { y, posterior } = await problem(op, sigma0);
    const K = 1000;
    // All T = 1000 steps; 5 CG iterations solve the 5x5 system of the 5 observed pixels exactly.
    const r = await restore(denoiser(), op, y, { method: 'mmps', sigma0, steps: 1000, cgIterations: 5, samples: K, batchSize: K, seed: 1 });
    const m = sampleMoments(r.samples, K);
    const P = posterior!.cov;
    for (let j = 0; j < D; j++) {
      // Mean: 4 standard errors sd_j / √K.
      expect(Math.abs(m.mean[j]! - posterior!.mean[j]!)).toBeLessThan((4 * Math.sqrt(P[j * D + j]!)) / Math.sqrt(K));
      for (let k = 0; k <= j; k++) {
        // Covariance entries: the standard error of a sample covariance of Gaussians is
        // √((P_jj P_kk + P_jk²) / K); 4 of them, plus the ancestral sampler's under-dispersion, which
        // shrinks as 1/steps: 3.5 % of the variance at 1000 steps (measured with 8000 samples; docs/restore.md).
        const se = Math.sqrt((P[j * D + j]! * P[k * D + k]! + P[j * D + k]! ** 2) / K);
        expect(Math.abs(m.cov[j * D + k]! - P[j * D + k]!)).toBeLessThan(4 * se + 0.05 * Math.sqrt(P[j * D + j]! * P[k * D + k]!));
      }
    }
    op.dispose();
  }, 120_000);
});

describe('DDRM on a Gaussian prior', () => {
  it('approaches the posterior mean: within 0.25 posterior sd at 1000 steps (exact only in the limit; docs/restore.md)', async () => {
    const op = maskOp();
    const sigma0 = 0.1;
    const { y, posterior } = await problem(op, sigma0);
    const K = 1000;
    const r = await restore(denoiser(), op, y, { method: 'ddrm', sigma0, steps: 1000, samples: K, batchSize: K, seed: 2 });
    const m = sampleMoments(r.samples, K);
    for (let j = 0; j < D; j++) {
      const sd = Math.sqrt(posterior!.cov[j * D + j]!);
      expect(Math.abs(m.mean[j]! - posterior!.mean[j]!)).toBeLessThan(0.25 * sd + (4 * sd) / Math.sqrt(K));
    }
    op.dispose();
  }, 60_000);
});

describe('noiseless masks', () => {
  for (const method of ['ddrm', 'mmps'] as const)
    it(`${method}: every sample equals y on the observed pixels`, async () => {
      const op = maskOp();
      const { y, rows } = await problem(op, 0);
      const r = await restore(denoiser(), op, y, { method, sigma0: 0, steps: 50, cgIterations: 5, samples: 32, batchSize: 32, seed: 4 });
      // DDRM sets observed SVD coordinates (here pixels) to y at its last step: exact. MMPS ends on
      // x̂0 + Cov Aᵀ v with A x = y solved by CG in float32: within 1e-5 of values of order 1.
      const tol = method === 'ddrm' ? 0 : 1e-5;
      for (let k = 0; k < 32; k++) for (const j of rows) expect(Math.abs(r.samples[k * D + j]! - y[j]!)).toBeLessThanOrEqual(tol);
      op.dispose();
    });
});

describe('seeds, cancellation and memory', () => {
  it('the same seed gives identical samples, another seed different ones', async () => {
    const op = maskOp();
    const { y } = await problem(op, 0.05);
    for (const method of RESTORE_METHODS) {
      const run = (seed: number) => restore(denoiser(), op, y, { method, sigma0: 0.05, steps: 10, samples: 3, batchSize: 2, seed });
      const [a, b, c] = [await run(5), await run(5), await run(6)];
      expect(a.samples).toEqual(b.samples);
      expect(a.samples).not.toEqual(c.samples);
    }
    op.dispose();
  });

  it('cancellation rejects with the abort reason and leaves no tensor allocated', async () => {
    const op = maskOp();
    const { y } = await problem(op, 0.05);
    await restore(denoiser(), op, y, { method: 'mmps', sigma0: 0.05, steps: 2, samples: 1 });
    const before = await settledInUse('cpu');
    for (const method of RESTORE_METHODS) {
      const controller = new AbortController();
      const run = restore(denoiser(), op, y, {
        method,
        sigma0: 0.05,
        steps: 20,
        samples: 4,
        batchSize: 2,
        signal: controller.signal,
        onProgress: (done) => done === 5 && controller.abort(new Error('stop')),
      });
      await expect(run).rejects.toThrow('stop');
      expect(await settledInUse('cpu')).toBe(before);
    }
    // A finished run leaves nothing either.
    await restore(denoiser(), op, y, { method: 'mmps', sigma0: 0.05, steps: 5, samples: 2 });
    expect(await settledInUse('cpu')).toBe(before);
    op.dispose();
  });

  it('rejects bad options with errors naming them', async () => {
    const op = maskOp();
    const y = new Float32Array(D);
    await expect(restore(denoiser(), op, y, { method: 'foo' as never, sigma0: 0 })).rejects.toThrow(
      /method: expected one of ddrm, dps, pigdm, mmps/,
    );
    await expect(restore(denoiser(), op, y, { method: 'mmps', sigma0: -1 })).rejects.toThrow(/sigma0/);
    await expect(restore(denoiser(), op, y, { method: 'mmps', sigma0: 0, steps: 5000 })).rejects.toThrow(
      /steps: expected an integer in \[1, 1000\]/,
    );
    await expect(restore(denoiser(), op, new Float32Array(3), { method: 'mmps', sigma0: 0 })).rejects.toThrow(/y: expected 16 values/);
    await expect(restore(denoiser(), op, y, { method: 'mmps', sigma0: 0, samples: 0 })).rejects.toThrow(/samples/);
    op.dispose();
  });
});

describe('every method with a UNet prior on every operator kind', () => {
  const devices = ['cpu', ...(hasCuda ? ['cuda:0'] : [])];
  for (const device of devices)
    for (const kind of ['mask', 'blockaverage', 'fourier'] as const)
      it(`${kind} on ${device}: finite samples of the signal's shape, nothing leaked`, async () => {
        const C = kind === 'fourier' ? 2 : 1;
        const net = new UNet(
          { inChannels: C, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [], resolution: 8, zeroInit: false },
          { device, seed: 1 },
        );
        const den = unetPrior(net, new NoiseSchedule({ kind: 'linear' }), kind === 'fourier' ? 'v' : 'eps');
        const op: Degradation =
          kind === 'mask'
            ? new MaskOperator(
                Uint8Array.from({ length: 2 * 64 }, (_, i) => ((i * 7) % 3 ? 1 : 0)),
                [2, 1, 8, 8],
                [1, 8, 8],
                { device },
              )
            : kind === 'blockaverage'
              ? new BlockAverageOperator(2, [1, 8, 8], 2, { device })
              : new FourierOperator(
                  Uint8Array.from({ length: 16 }, (_, i) => (i % 8 < 3 ? 1 : 0)),
                  [2, 8, 8],
                  { device },
                );
        const m = op.measurementShape.reduce((a, b) => a * b, 1);
        const y = Float32Array.from({ length: 2 * m }, (_, i) => 0.3 * Math.sin(i));
        // A first run lets anything allocated once (and frees still queued from earlier work) settle.
        await restore(den, op, y, { method: 'mmps', sigma0: 0.05, steps: 2, samples: 1 });
        const before = await settledInUse(device);
        for (const method of RESTORE_METHODS) {
          const r = await restore(den, op, y, { method, sigma0: 0.05, steps: 4, samples: 2, seed: 1 });
          expect(r.samples.length).toBe(2 * 2 * C * 64);
          expect(r.samples.every(Number.isFinite)).toBe(true);
          expect(r.std.some((s) => s > 0)).toBe(true);
        }
        expect(await settledInUse(device)).toBe(before);
        op.dispose();
        net.dispose();
      });
});
