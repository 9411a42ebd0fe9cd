// The fast version of bench/gsure-divergence.mjs (docs/gsure.md): the Hutchinson finite-difference
// estimate of a small float32 UNet's divergence against the exact divergence in double.
import { describe, expect, it } from 'vitest';
import { divergenceStudy } from '../../lib/gsure/divergence.ts';
import { DEFAULT_GSURE_EPS, DEFAULT_GSURE_DIFFERENCE } from '../../lib/gsure/step.ts';
import { unetLayout, type UNetConfig } from '../../lib/index.ts';
import { native } from '../../lib/native.ts';

const config: UNetConfig = {
  inChannels: 1,
  channels: 16,
  mult: [1, 1],
  resBlocks: 1,
  attnResolutions: [4],
  resolution: 8,
  zeroInit: false,
};

describe('divergence estimator (float32 CPU UNet, 8x8, random weights)', () => {
  it('finite-difference error: forward O(eps), central O(eps²), both far below the probe spread at the defaults', async () => {
    const init = native.empty('cpu', [unetLayout(config).paramCount]);
    native.unetInit(config, 7, init);
    const params = await native.read(init);
    init.dispose();
    let s = 5;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    const x = Float32Array.from({ length: 64 }, () => rnd());
    const eps = [3e-2, 1e-2, 3e-3, 1e-3];
    const r = await divergenceStudy({ config, params, x, t: 500, probes: 32, eps, seed: 3 });
    console.log(
      `exact divergence ${r.exact.toFixed(6)} (backward diagonal ${r.exactFromBackward.toFixed(6)}), std of bᵀJb ${r.quadraticStd.toFixed(3)}`,
    );
    console.table(
      r.rows.map((row) => ({
        ...row,
        fdBias: row.fdBias.toExponential(2),
        fdBiasStdErr: row.fdBiasStdErr.toExponential(1),
        fdRms: row.fdRms.toExponential(2),
        error: row.error.toExponential(2),
        perProbeStd: row.perProbeStd.toFixed(3),
      })),
    );
    // The two exact values are independent computations (differences of outputs vs backward passes).
    expect(Math.abs(r.exact - r.exactFromBackward)).toBeLessThan(1e-7 * (1 + Math.abs(r.exact)));
    const rms = (difference: string, e: number) => r.rows.find((row) => row.difference === difference && row.eps === e)!.fdRms;
    // Truncation orders (measured ratios over a factor 3 of eps: forward ~3.3, central ~9).
    expect(rms('forward', 3e-2) / rms('forward', 1e-2)).toBeGreaterThan(2.5);
    expect(rms('forward', 3e-2) / rms('forward', 1e-2)).toBeLessThan(4.5);
    expect(rms('central', 3e-2) / rms('central', 1e-2)).toBeGreaterThan(6);
    // Central beats forward at the same eps by far (measured ~20x at 1e-2).
    expect(rms('central', 1e-2)).toBeLessThan(rms('forward', 1e-2) / 8);
    // At the defaults the finite-difference error of one probe is a small fraction of the probe's own
    // spread (measured 0.7 %): Hutchinson's variance, not the difference quotient, dominates.
    const def = r.rows.find((row) => row.difference === DEFAULT_GSURE_DIFFERENCE && row.eps === DEFAULT_GSURE_EPS)!;
    expect(def.fdRms).toBeLessThan(0.015 * def.perProbeStd);
    // With Gaussian probes the O(eps) term of a forward difference has mean zero (odd moments), so its
    // mean error is consistent with zero although each probe's is not.
    expect(Math.abs(def.fdBias)).toBeLessThan(4 * def.fdBiasStdErr);
  });
});
