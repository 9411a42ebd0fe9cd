// Multi-task DSM training of the transfer model: the host AdamW against the device AdamW, frozen
// groups and a frozen encoder left bit-for-bit unchanged, the DSM gradients against finite differences
// of the DSM loss, checkpoint names, resume equal to the uninterrupted run, and cancellation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { native } from '../../lib/native.ts';
import { readSafetensors } from '../../lib/safetensors.ts';
import { AdamW, HostAdamW } from '../../lib/optim.ts';
import { tensor, zeros } from '../../lib/tensor.ts';
import { loadTransfer, saveTransfer } from '../../lib/transfer/checkpoint.ts';
import { targetModel, TransferModel, type TransferConfig } from '../../lib/transfer/model.ts';
import { dsmStep, selectSourceHead, trainTransfer, type PairSet } from '../../lib/transfer/train.ts';
import { testValues } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kintsugi-transfer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config: TransferConfig = {
  xDim: 3,
  yDim: 4,
  repDim: 2,
  encoder: { hidden: 6, depth: 2, activation: 'silu' },
  head: { hidden: 7, depth: 2, activation: 'silu' },
  timeFeatures: 4,
};
function pairs(n: number, seed: number): PairSet {
  return { x: testValues(n * 3, seed), y: testValues(n * 4, seed + 1), n };
}
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('HostAdamW', () => {
  it('takes the same steps as the device AdamW (clipping, decay, warm-up)', async () => {
    const n = 37;
    const p0 = testValues(n, 1);
    const opts = { lr: 0.01, weightDecay: 0.1, warmupSteps: 2, maxGradNorm: 0.5 };
    const host = { params: Float32Array.from(p0), grads: new Float32Array(n) };
    const hopt = new HostAdamW([{ name: 'all', ...host }], opts);
    const dev = { params: tensor(p0, [n]), grads: zeros([n]) };
    const dopt = new AdamW(dev, opts);
    for (let s = 0; s < 6; s++) {
      const g = testValues(n, 10 + s).map((v) => v * (s % 2 ? 0.01 : 1)); // clipped and unclipped steps
      host.grads.set(g);
      native.write(dev.grads.handle(), g);
      hopt.step();
      dopt.step();
    }
    const d = await dev.params.toArray();
    for (let i = 0; i < n; i++) expect(host.params[i]!).toBeCloseTo(d[i]!, 6);
    expect(host.params).not.toEqual(p0);
    dopt.dispose();
  });

  it('never touches a frozen group, and scales each group by its lrScale', () => {
    const a = { params: testValues(8, 2), grads: testValues(8, 3) };
    const b = { params: testValues(8, 4), grads: testValues(8, 5) };
    const c = { params: testValues(8, 4), grads: testValues(8, 5) };
    const before = Buffer.from(bytes(a.params));
    const opt = new HostAdamW(
      [
        { name: 'h', ...a, frozen: true },
        { name: 'head', ...b },
        { name: 'half', ...c, lrScale: 0.5 },
      ],
      { lr: 0.1, weightDecay: 0.5 },
    );
    for (let s = 0; s < 4; s++) opt.step();
    expect(bytes(a.params).equals(before)).toBe(true);
    expect([...opt.moments.keys()]).toEqual(['head', 'half']);
    // Adam's first step moves every weight by about lr: the half-rate group by about half as much.
    const moved = (p: Float32Array) => Math.abs(p[0]! - testValues(8, 4)[0]!);
    expect(moved(c.params) / moved(b.params)).toBeGreaterThan(0.4);
    expect(moved(c.params) / moved(b.params)).toBeLessThan(0.6);
    expect(
      () =>
        new HostAdamW([
          { name: 'x', ...a },
          { name: 'x', ...b },
        ]),
    ).toThrow(/appears twice/);
  });
});

describe('transfer DSM training', () => {
  it('computes the gradient of its loss (finite differences on encoder and head weights)', () => {
    const model = new TransferModel(config, { heads: 2, seed: 3 });
    const tasks = [pairs(5, 1), pairs(7, 2)];
    const o = { seed: 5n, step: 3, batchSize: 6, freezeEncoder: false };
    const lossAt = () => {
      model.encoder.grads.fill(0);
      for (const h of model.heads) h.grads.fill(0);
      return dsmStep(model, tasks, o);
    };
    lossAt();
    const gEnc = Float32Array.from(model.encoder.grads);
    const gHeads = model.heads.map((h) => Float32Array.from(h.grads));
    const h = 1e-2;
    const check = (params: Float32Array, grads: Float32Array, i: number) => {
      const keep = params[i]!;
      params[i] = keep + h;
      const up = lossAt();
      params[i] = keep - h;
      const down = lossAt();
      params[i] = keep;
      const fd = (up - down) / (2 * h);
      expect(Math.abs(grads[i]! - fd)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)) + 1e-4);
    };
    for (const i of [0, 5, 17, gEnc.length - 1]) check(model.encoder.params, gEnc, i);
    for (let k = 0; k < 2; k++) for (const i of [0, 11, 40, gHeads[k]!.length - 1]) check(model.heads[k]!.params, gHeads[k]!, i);
    // a frozen encoder gets no gradient, the heads the same as before
    model.encoder.grads.fill(0);
    for (const hd of model.heads) hd.grads.fill(0);
    dsmStep(model, tasks, { ...o, freezeEncoder: true });
    expect(model.encoder.grads.every((v) => v === 0)).toBe(true);
    for (let k = 0; k < 2; k++) expect(model.heads[k]!.grads).toEqual(gHeads[k]);
  });

  it('fine-tuning leaves the pre-trained encoder bit-for-bit unchanged; the baseline starts f_0 from the same weights', async () => {
    const pre = new TransferModel(config, { heads: 2, seed: 1 });
    await trainTransfer({ model: pre, tasks: [pairs(20, 1), pairs(20, 2)], steps: 10, batchSize: 8, optimizer: { lr: 1e-2 } });
    const ft = targetModel(config, { seed: 2, encoder: pre.encoder });
    const scratch = targetModel(config, { seed: 2 });
    expect(ft.heads[0]!.params).toEqual(scratch.heads[0]!.params);
    expect(ft.encoder.params).toEqual(pre.encoder.params);
    expect(scratch.encoder.params).not.toEqual(pre.encoder.params);
    const h0 = Buffer.from(bytes(ft.encoder.params));
    const f0 = Float32Array.from(ft.heads[0]!.params);
    const path = join(dir, 'ft.safetensors');
    await trainTransfer({
      model: ft,
      tasks: [pairs(10, 3)],
      freezeEncoder: true,
      steps: 12,
      batchSize: 10,
      optimizer: { lr: 1e-2, weightDecay: 0.1 },
      checkpoint: { path, every: 5 },
    });
    expect(bytes(ft.encoder.params).equals(h0)).toBe(true);
    expect(ft.heads[0]!.params).not.toEqual(f0);
    const file = await readSafetensors(path);
    expect([...file.tensors.keys()]).toEqual([
      'h.0.weight',
      'h.0.bias',
      'h.1.weight',
      'h.1.bias',
      'heads.0.0.weight',
      'heads.0.0.bias',
      'heads.0.1.weight',
      'heads.0.1.bias',
      'optimizer.heads.0.m',
      'optimizer.heads.0.v',
    ]);
    expect(file.metadata.phase).toBe('finetune');
    expect(file.tensors.get('heads.0.0.weight')!.shape).toEqual([7, 3 + 2 + 4]);
    const loaded = await loadTransfer(path);
    expect(bytes(loaded.model.encoder.params).equals(h0)).toBe(true);
    expect(loaded.model.heads[0]!.params).toEqual(ft.heads[0]!.params);
  });

  it('resumes after a cancellation to exactly the weights of the uninterrupted run', async () => {
    const tasks = [pairs(9, 4), pairs(6, 5), pairs(11, 6)];
    const run = async (path: string, signal?: AbortSignal, onProgress?: (p: { step: number }) => void, resume?: string) => {
      const model = new TransferModel(config, { heads: 3, seed: 8 });
      const r = await trainTransfer({
        model,
        tasks,
        steps: 24,
        batchSize: 7,
        optimizer: { lr: 5e-3, warmupSteps: 3, maxGradNorm: 1 },
        cosine: true,
        seed: 4,
        checkpoint: { path, every: 6 },
        signal,
        onProgress,
        progressEvery: 2,
        resume,
      });
      return { model, r };
    };
    const full = await run(join(dir, 'full.safetensors'));
    expect(full.r.aborted).toBe(false);
    expect(full.r.step).toBe(24);
    const controller = new AbortController();
    const cut = join(dir, 'cut.safetensors');
    const first = await run(cut, controller.signal, (p) => p.step === 10 && controller.abort());
    expect(first.r.aborted).toBe(true);
    expect(first.r.step).toBeLessThan(24);
    expect((await loadTransfer(cut)).meta.step).toBe(first.r.step);
    const second = await run(cut, undefined, undefined, cut);
    expect(second.r.step).toBe(24);
    expect(second.model.encoder.params).toEqual(full.model.encoder.params);
    second.model.heads.forEach((h, k) => expect(h.params).toEqual(full.model.heads[k]!.params));
    // resuming with another seed is refused, naming the file
    await expect(
      trainTransfer({ model: new TransferModel(config, { heads: 3 }), tasks, steps: 24, batchSize: 7, seed: 5, resume: cut }),
    ).rejects.toThrow(/cut\.safetensors: a pretrain checkpoint with seed 4/);
  });

  it('rejects data that does not fit, naming the task and the field', async () => {
    const model = new TransferModel(config, { heads: 2 });
    await expect(trainTransfer({ model, tasks: [pairs(4, 1)], steps: 1, batchSize: 2 })).rejects.toThrow(/one task per head \(2\), got 1/);
    await expect(
      trainTransfer({ model, tasks: [pairs(4, 1), { ...pairs(4, 2), y: new Float32Array(3) }], steps: 1, batchSize: 2 }),
    ).rejects.toThrow(/tasks\[1\]\.y: expected a Float32Array of n \* yDim = 16 values, got 3/);
  });

  it('selects the source head that fits the target pairs best', async () => {
    const pre = new TransferModel(config, { heads: 3, seed: 2 });
    const target = pairs(16, 30);
    // a head trained on the target pairs (through the same h) must beat two untrained ones
    const fit = targetModel(config, { seed: 9, encoder: pre.encoder });
    await trainTransfer({ model: fit, tasks: [target], freezeEncoder: true, steps: 150, batchSize: 16, optimizer: { lr: 1e-2 } });
    pre.heads[1]!.params.set(fit.heads[0]!.params);
    const { head, losses } = selectSourceHead(pre, target, { seed: 1 });
    expect(head).toBe(1);
    expect(losses).toHaveLength(3);
    expect(losses[1]!).toBeLessThan(Math.min(losses[0]!, losses[2]!));
  });

  it('the Gaussian skip adds the exact noise of the fitted Gaussian, and checkpoints keep its statistics', async () => {
    const model = new TransferModel({ ...config, gaussianSkip: true }, { heads: 1, seed: 3 });
    const data = pairs(40, 12);
    model.fitStats([data]);
    // independent per-coordinate mean and (biased) variance
    for (let i = 0; i < 3; i++) {
      let m = 0;
      for (let r = 0; r < 40; r++) m += data.x[r * 3 + i]! / 40;
      let v = 0;
      for (let r = 0; r < 40; r++) v += (data.x[r * 3 + i]! - m) ** 2 / 40;
      expect(model.mean[i]!).toBeCloseTo(m, 5);
      expect(model.variance[i]!).toBeCloseTo(v, 5);
    }
    // a head whose last layer outputs 0 leaves exactly the Gaussian's noise σ(x − αμ)/(α²v + σ²)
    const last = model.heads[0]!.layers.at(-1)!;
    model.heads[0]!.params.fill(0, last.w, last.b + last.out);
    const xt = Float32Array.from([0.3, -1.2, 2.0]);
    const t = 0.7;
    const a = Math.exp(-t),
      s = Math.sqrt(1 - Math.exp(-2 * t));
    const eps = model.predictNoise(0, xt, new Float32Array(2), [t], 1);
    for (let i = 0; i < 3; i++) expect(eps[i]!).toBeCloseTo((s * (xt[i]! - a * model.mean[i]!)) / (a * a * model.variance[i]! + s * s), 5);
    const path = join(dir, 'skip.safetensors');
    await saveTransfer(path, model, { phase: 'pretrain', step: 0, steps: 1, seed: '0' });
    const back = await loadTransfer(path);
    expect(back.model.config.gaussianSkip).toBe(true);
    expect(back.model.mean).toEqual(model.mean);
    expect(back.model.variance).toEqual(model.variance);
  });
});
