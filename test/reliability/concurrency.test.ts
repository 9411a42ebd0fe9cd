// Concurrency on one device: two trainings and a sampler in one process, cancelled at seeded random
// points, leave no tensor behind and no wedged device thread; and for every family of operations,
// disposing the inputs (or the model, the optimizer, the EMA) while the work is still queued changes
// nothing in the result and frees everything once the work is done. Nothing here is timed: the
// cancellation points are step numbers, and "not wedged" means synchronize() and a fresh op complete.
import { describe, expect, it } from 'vitest';
import { avgPool, concatChannels, extractPatches, overlapAdd, upsampleNearest } from '../../lib/bootstrap/views.ts';
import { gsureProbes } from '../../lib/gsure/kernels.ts';
import { memoryStats, synchronize } from '../../lib/memory.ts';
import { AdamW, EMA } from '../../lib/optim.ts';
import { Generator } from '../../lib/random.ts';
import { sample, unetDenoiser } from '../../lib/sample.ts';
import { combine, NoiseSchedule } from '../../lib/schedule.ts';
import { randn, tensor, type Tensor } from '../../lib/tensor.ts';
import { train } from '../../lib/train.ts';
import { UNet, type UNetConfig } from '../../lib/unet.ts';
import { blobs } from '../helpers.ts';

const config: UNetConfig = { inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [4], resolution: 8 };
const inUse = async () => {
  await synchronize('cpu');
  return memoryStats('cpu').inUse;
};
const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe('two trainings and a sampler cancelled at random points', () => {
  it('leave no tensor behind and the device thread working, over several seeded schedules', async () => {
    const before = await inUse();
    let s = 20261206;
    const random = (n: number) => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n;
    for (let round = 0; round < 4; round++) {
      const stops = [1 + random(10), 1 + random(10), 1 + random(8)];
      const controllers = stops.map(() => new AbortController());
      const models = [0, 1, 2].map((k) => new UNet(config, { device: 'cpu', seed: round * 3 + k }));
      const run = (k: number) =>
        train({
          model: models[k]!,
          data: blobs(32, k + 1),
          steps: 12,
          batchSize: 4,
          seed: k,
          emaDecay: 0.9,
          progressEvery: 1,
          signal: controllers[k]!.signal,
          onProgress: (p) => p.step >= stops[k]! && controllers[k]!.abort(),
        });
      let sampled = 0;
      const sampler = sample(
        (x, t) => {
          if (++sampled >= stops[2]!) controllers[2]!.abort();
          return unetDenoiser(models[2]!)(x, t);
        },
        {
          schedule: new NoiseSchedule({ kind: 'linear' }),
          prediction: 'eps',
          shape: [2, 1, 8, 8],
          steps: 10,
          device: 'cpu',
          generator: new Generator(round),
          signal: controllers[2]!.signal,
        },
      );
      const [a, b, c] = await Promise.allSettled([run(0), run(1), sampler]);
      for (const r of [a, b]) {
        expect(r.status).toBe('fulfilled');
        const v = (r as PromiseFulfilledResult<Awaited<ReturnType<typeof train>>>).value;
        expect(v.step).toBeLessThan(12); // stopped where its schedule said
        v.optimizer.dispose();
        v.ema?.dispose();
      }
      if (c.status === 'fulfilled') c.value.dispose();
      else expect((c.reason as Error).name).toBe('AbortError');
      for (const m of models) m.dispose();
      // Not wedged: the queue drains and takes new work.
      expect(await inUse()).toBe(before);
      const [p, q] = [tensor([1, 2], [2], { device: 'cpu' }), tensor([3, 4], [2], { device: 'cpu' })];
      const r = p.add(q);
      expect([...(await r.toArray())]).toEqual([4, 6]);
      for (const u of [p, q, r]) u.dispose();
    }
  });
});

/** One family of operations: `run` queues work on inputs made by `make` and returns the outputs; `holders` are what it may dispose early. */
interface Family {
  name: string;
  run(dispose: boolean): Promise<Float32Array[]>;
}

const x4 = (seed: number, shape = [2, 1, 8, 8]) => randn(shape, { generator: new Generator(seed), device: 'cpu' });
/** Queues `work` on fresh inputs, disposes the inputs at once when asked (before any of it has run), then reads the outputs and disposes them. */
async function queued(make: () => Tensor[], work: (inputs: Tensor[]) => Tensor[], dispose: boolean): Promise<Float32Array[]> {
  const inputs = make();
  const outputs = work(inputs);
  if (dispose) for (const t of inputs) t.dispose();
  const values = await Promise.all(outputs.map((t) => t.toArray()));
  for (const t of outputs) t.dispose();
  if (!dispose) for (const t of inputs) t.dispose();
  return values;
}

const families: Family[] = [
  {
    name: 'elementwise (add, scale, clamp) and reduction (sum)',
    run: (d) =>
      queued(
        () => [x4(1), x4(2)],
        ([a, b]) => {
          const sum = a!.add(b!);
          const scaled = sum.scale(3);
          const out = [scaled.clamp(-1, 1), a!.sum()];
          sum.dispose(); // intermediates too, while the work that reads them is queued
          scaled.dispose();
          return out;
        },
        d,
      ),
  },
  {
    name: 'copies (clone)',
    run: (d) =>
      queued(
        () => [x4(3)],
        ([a]) => [a!.clone()],
        d,
      ),
  },
  {
    name: 'linear combinations (combine)',
    run: (d) =>
      queued(
        () => [x4(4), x4(5)],
        ([a, b]) => [
          combine([
            [a!, [0.5, 2]],
            [b!, [-1, 0.25]],
          ]),
        ],
        d,
      ),
  },
  {
    name: 'bootstrap views (pooling, upsampling, patches, overlap-add, concatenation)',
    run: (d) =>
      queued(
        () => [x4(6)],
        ([a]) => {
          const pooled = avgPool(a!, 2);
          const up = upsampleNearest(pooled, 2);
          const patches = extractPatches(a!, { size: 4, stride: 2 });
          const back = overlapAdd(patches, [2, 1, 8, 8], { stride: 2, window: 'hann' });
          const cat = concatChannels(a!, up);
          pooled.dispose();
          patches.dispose();
          return [up, back, cat];
        },
        d,
      ),
  },
  {
    name: 'GSURE probes',
    run: (d) =>
      queued(
        () => [x4(7)],
        ([a]) => {
          const { plus, minus } = gsureProbes(a!, { probes: 2, eps: 1e-3, key: { seed: 1n, offset: 0n, stream: 0n }, central: true });
          return [plus, minus!];
        },
        d,
      ),
  },
  {
    name: 'UNet forward and backward, AdamW and EMA (model, optimizer and EMA disposed while queued)',
    async run(dispose) {
      const model = new UNet(config, { device: 'cpu', seed: 8 });
      const optimizer = new AdamW(model, { lr: 1e-2 });
      const ema = new EMA(model, 0.5);
      const x = x4(9);
      const t = tensor([10, 500], [2], { device: 'cpu' });
      const { out, tape } = model.forward(x, t);
      const gx = model.backward(tape, out, { inputGrad: true })!;
      tape.release();
      optimizer.step();
      ema.update();
      const params = model.params.clone();
      const emaParams = ema.params.clone();
      if (dispose) for (const h of [model, optimizer, ema, x, t]) h.dispose();
      const values = await Promise.all([out, gx, params, emaParams].map((u) => u.toArray()));
      for (const u of [out, gx, params, emaParams]) u.dispose();
      if (!dispose) for (const h of [model, optimizer, ema, x, t]) h.dispose();
      return values;
    },
  },
];

describe('disposal while work is queued, for every op family', () => {
  for (const f of families)
    it(`${f.name}: same results, nothing left`, async () => {
      const before = await inUse();
      const kept = await f.run(false);
      const disposed = await f.run(true);
      expect(disposed.length).toBe(kept.length);
      disposed.forEach((v, i) => expect(same(v, kept[i]!), `output ${i}`).toBe(true));
      expect(await inUse()).toBe(before);
    });
});
