// Residual training of bootstrapping diffusion end to end on the CPU (tiny f0, crude frozen views):
// the loss on a fixed evaluation batch falls with either penalty, a large λ drives f0 towards zero,
// a resumed run repeats the uninterrupted one exactly, and a model of the wrong shape is refused.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { combine } from '../../lib/schedule.ts';
import { Generator, NoiseSchedule, randn, tensor, UNet, type Denoiser, type UNetConfig } from '../../lib/index.ts';
import { aggregateEstimate, type BootstrapViews } from '../../lib/bootstrap/denoiser.ts';
import { residualLoss, trainResidual, type ResidualPenalty } from '../../lib/bootstrap/train.ts';
import { concatChannels } from '../../lib/bootstrap/views.ts';
import { blobs } from '../helpers.ts';

const config: UNetConfig = { inChannels: 2, outChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
const schedule = new NoiseSchedule({ kind: 'linear' });

// Crude frozen view models (x0-prediction): a shrunk copy of their input, so x̂_agg is far from
// E[x0|x_t] and f0 has something to correct.
const shrink =
  (c: number): Denoiser =>
  (x) =>
    combine([[x, new Array(x.shape[0]!).fill(c)]]);
const views: BootstrapViews = {
  schedule,
  lowres: { denoiser: shrink(0.6), prediction: 'x0', factor: 2 },
  patch: { denoiser: shrink(0.4), prediction: 'x0', size: 4, stride: 2, window: 'hann' },
};
const data = blobs(32);
const base = { views, data, batchSize: 8, optimizer: { lr: 2e-3 }, seed: 5, progressEvery: 10, emaDecay: 0 };

/** The loss (λ = 0) and the mean square of f0 on a fixed batch of 16 at times spread over the schedule. */
async function evaluate(model: UNet): Promise<{ fit: number; f0: number }> {
  const B = 16;
  const ts = Array.from({ length: B }, (_, i) => 30 + i * 60);
  const ab = ts.map((t) => schedule.alphaBars[t]!);
  const x0 = tensor(data.images.subarray(0, B * 64), [B, 1, 8, 8], { device: 'cpu' });
  const eps = randn([B, 1, 8, 8], { generator: new Generator(123), device: 'cpu' });
  const xt = combine([
    [x0, ab.map(Math.sqrt)],
    [eps, ab.map((a) => Math.sqrt(1 - a))],
  ]);
  const tHost = Float32Array.from(ts);
  const agg = aggregateEstimate(views, xt, tHost);
  const input = concatChannels(xt, agg);
  const t = tensor(tHost, [B], { device: 'cpu' });
  const out = model.predict(input, t);
  const { gout, loss } = residualLoss(out, agg, x0, { lambda: 0 });
  const o = await out.toArray();
  const fit = await loss;
  for (const u of [x0, eps, xt, agg, input, t, out, gout]) u.dispose();
  return { fit, f0: o.reduce((s, v) => s + v * v, 0) / o.length };
}

describe('trainResidual', () => {
  for (const penalty of ['l2', 'batch-variance'] as ResidualPenalty[]) {
    it(`lowers the loss of x̂_agg + f0 on a fixed batch (${penalty} penalty, λ = 0.01)`, async () => {
      const model = new UNet(config, { device: 'cpu', seed: 3 });
      const before = await evaluate(model);
      const r = await trainResidual({ ...base, model, steps: 60, lambda: 0.01, penalty });
      const after = await evaluate(model);
      console.log(`${penalty}: fixed-batch loss ${before.fit} -> ${after.fit}`);
      expect(r.losses.length).toBe(60);
      expect(after.fit).toBeLessThan(0.6 * before.fit);
      model.dispose();
    }, 600_000); // a hang limit, not a speed target: generous for a loaded machine
  }

  it('a large λ keeps f0 near zero (D -> x̂_agg); the batch-variance penalty leaves its batch mean free', async () => {
    const f0After = async (lambda: number, penalty: ResidualPenalty) => {
      const model = new UNet(config, { device: 'cpu', seed: 4 });
      await trainResidual({ ...base, model, steps: 40, lambda, penalty });
      const { f0 } = await evaluate(model);
      model.dispose();
      return f0;
    };
    const free = await f0After(0, 'l2');
    const l2 = await f0After(1e4, 'l2');
    const variance = await f0After(1e4, 'batch-variance');
    console.log(
      `mean f0² after 40 steps: λ = 0 ${free.toExponential(2)}, λ = 1e4 l2 ${l2.toExponential(2)}, batch-variance ${variance.toExponential(2)}`,
    );
    expect(l2).toBeLessThan(0.01 * free);
    expect(variance).toBeGreaterThan(10 * l2);
  }, 600_000); // a hang limit, not a speed target: generous for a loaded machine

  it('a run resumed from a checkpoint repeats the uninterrupted losses exactly', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'kintsugi-boot-')), 'f0.safetensors');
    const whole = await trainResidual({ ...base, model: new UNet(config, { device: 'cpu', seed: 3 }), steps: 6 });
    await trainResidual({ ...base, model: new UNet(config, { device: 'cpu', seed: 3 }), steps: 3, checkpoint: { path, every: 3 } });
    const resumed = await trainResidual({ ...base, model: new UNet(config, { device: 'cpu', seed: 99 }), steps: 6, resume: path });
    expect(resumed.losses.map((l) => l.step)).toEqual([3, 4, 5]);
    expect(resumed.losses.map((l) => l.loss)).toEqual(whole.losses.slice(3).map((l) => l.loss));
  }, 600_000); // a hang limit, not a speed target: generous for a loaded machine

  it('refuses a model that does not see x_t and x̂_agg, and bad penalties', async () => {
    const plain = new UNet({ ...config, inChannels: 1 }, { device: 'cpu' });
    await expect(trainResidual({ ...base, model: plain, steps: 1 })).rejects.toThrow(
      /needs a model with inChannels 2 \(x_t and x̂_agg\), outChannels 1, resolution 8; got inChannels 1/,
    );
    const model = new UNet(config, { device: 'cpu' });
    await expect(trainResidual({ ...base, model, steps: 1, lambda: -1 })).rejects.toThrow(/lambda must be a finite number >= 0, got -1/);
    await expect(trainResidual({ ...base, model, steps: 1, penalty: 'batch-variance', batchSize: 1 })).rejects.toThrow(
      /needs batchSize >= 2/,
    );
    plain.dispose();
    model.dispose();
  });
});
