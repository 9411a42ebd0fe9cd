// Memory bounds: requests larger than the machine (or than KINTSUGI_CPU_MEMORY_LIMIT) are refused before
// anything is allocated, with a clear error; an out-of-memory in the middle of training leaves the process
// usable, gives back every byte the failed call took, and leaves the last checkpoint intact, so training
// resumes to the result of a run that never failed; and nothing leaks across a training run and sampling.
import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { memoryStats, synchronize } from '../../lib/memory.ts';
import { NoiseSchedule } from '../../lib/schedule.ts';
import { sample, unetDenoiser } from '../../lib/sample.ts';
import { Generator } from '../../lib/random.ts';
import { zeros } from '../../lib/tensor.ts';
import { train } from '../../lib/train.ts';
import { UNet } from '../../lib/unet.ts';
import { blobs } from '../helpers.ts';
import { runSnippet } from './child.ts';

describe('memory bounds', () => {
  it('refuses a tensor or a model larger than the machine before allocating, naming the limit', () => {
    const elements = Math.ceil((2 * totalmem()) / 4 / 1024) * 1024; // twice the physical memory, in float32
    let err: (Error & { code?: string }) | undefined;
    try {
      zeros([elements / 1024, 1024], { device: 'cpu' });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('KINTSUGI_OUT_OF_MEMORY');
    expect(err?.message).toMatch(
      /out of host memory: \d+ bytes requested on cpu with \d+ in use, over the limit of \d+ \((the machine's physical memory|KINTSUGI_CPU_MEMORY_LIMIT)\)/,
    );
    const before = memoryStats('cpu').inUse;
    expect(
      () => new UNet({ inChannels: 1, channels: 65536, mult: [1, 2], resBlocks: 2, attnResolutions: [], resolution: 8 }, { device: 'cpu' }),
    ).toThrow(/out of host memory|too large/);
    expect(memoryStats('cpu').inUse).toBe(before);
  });

  it('an out-of-memory inside training (forced by KINTSUGI_CPU_MEMORY_LIMIT) frees what it took, keeps the checkpoint, and training resumes to the uninterrupted result', () => {
    const out = runSnippet(
      `
      import { UNet } from './lib/unet.ts';
      import { train } from './lib/train.ts';
      import { memoryStats, synchronize } from './lib/memory.ts';
      import { readCheckpoint } from './lib/checkpoint.ts';
      import { zeros } from './lib/tensor.ts';
      import { blobs } from './test/helpers.ts';
      import { mkdtempSync, readFileSync } from 'node:fs';
      import { tmpdir } from 'node:os';
      import { join } from 'node:path';
      const cfg = { inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [], resolution: 8 };
      const data = blobs(2048);
      const dir = mkdtempSync(join(tmpdir(), 'kintsugi-oom-'));
      const path = join(dir, 'ckpt.safetensors');
      const result = {};
      const done = async (r) => { r.optimizer.dispose(); r.ema?.dispose(); await synchronize('cpu'); };
      // An uninterrupted run of 6 steps, for reference.
      const ref = new UNet(cfg, { device: 'cpu', seed: 1 });
      await done(await train({ model: ref, data, steps: 6, batchSize: 4, seed: 2 }));
      const want = await ref.params.toArray();
      ref.dispose();
      // 3 steps with a checkpoint, then a call whose batch cannot fit under the cap.
      const model = new UNet(cfg, { device: 'cpu', seed: 1 });
      await done(await train({ model, data, steps: 3, batchSize: 4, seed: 2, checkpoint: { path, every: 1 } }));
      const bytes = readFileSync(path);
      const baseline = memoryStats('cpu').inUse;
      // Batches of growing size, so the out-of-memory lands at different points of a step (the batch,
      // the forward pass, the gradient); every attempt must give back all it took.
      result.leaked = [];
      result.outcomes = [];
      for (const batchSize of [4096, 8192, 16384, 65536]) {
        try {
          const r = await train({ model, data, steps: 6, batchSize, seed: 2, resume: path, checkpoint: { path: path + '.big', every: 1 } });
          await done(r);
          result.outcomes.push('trained');
        } catch (e) {
          result.outcomes.push(e.code);
          result.failed = true;
          result.code = e.code;
          result.message = e.message;
        }
        await synchronize('cpu').catch(() => {});
        result.leaked.push(memoryStats('cpu').inUse - baseline);
      }
      result.peakOverCap = memoryStats('cpu').peak > 6 * 1024 * 1024;
      result.checkpointUnchanged = Buffer.compare(bytes, readFileSync(path)) === 0;
      result.step = (await readCheckpoint(path)).step;
      // The process is still usable: a fresh model resumes from the checkpoint with the small batch.
      const again = new UNet(cfg, { device: 'cpu', seed: 9 });
      await done(await train({ model: again, data, steps: 6, batchSize: 4, seed: 2, resume: path }));
      const got = await again.params.toArray();
      result.identical = got.length === want.length && got.every((v, i) => Object.is(v, want[i]));
      try { zeros([1024, 1024, 16], { device: 'cpu' }); } catch (e) { result.bigTensor = e.message; }
      console.log(JSON.stringify(result));
      `,
      { KINTSUGI_CPU_MEMORY_LIMIT: '6M' },
    );
    const r = JSON.parse(out.split('\n').at(-1)!);
    expect(r.failed).toBe(true);
    expect(r.code).toBe('KINTSUGI_OUT_OF_MEMORY');
    expect(r.message).toMatch(/over the limit of 6291456 \(KINTSUGI_CPU_MEMORY_LIMIT\)/);
    expect(r.outcomes).toEqual(Array(4).fill('KINTSUGI_OUT_OF_MEMORY'));
    expect(r.leaked).toEqual([0, 0, 0, 0]);
    expect(r.peakOverCap).toBe(false);
    expect(r.checkpointUnchanged).toBe(true);
    expect(r.step).toBe(3);
    expect(r.identical).toBe(true);
    expect(r.bigTensor).toMatch(/^out of host memory: 67108864 bytes requested on cpu with \d+ in use, over the limit of 6291456/);
  });

  it('no tensor outlives a training run and a sampling run once their results are disposed', async () => {
    await synchronize('cpu');
    const before = memoryStats('cpu').inUse;
    const model = new UNet(
      { inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [8], resolution: 8 },
      { device: 'cpu', seed: 3 },
    );
    const r = await train({ model, data: blobs(32), steps: 12, batchSize: 4, seed: 1, emaDecay: 0.9 });
    const x = await sample(unetDenoiser(model, r.ema?.params), {
      schedule: new NoiseSchedule({ kind: 'linear' }),
      prediction: 'eps',
      shape: [2, 1, 8, 8],
      steps: 4,
      device: 'cpu',
      generator: new Generator(1),
    });
    x.dispose();
    r.optimizer.dispose();
    r.ema?.dispose();
    model.dispose();
    await synchronize('cpu');
    expect(memoryStats('cpu').inUse).toBe(before);
  });
});
