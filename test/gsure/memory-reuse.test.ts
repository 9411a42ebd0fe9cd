// A GSURE step keeps two tapes alive, so on the CPU it needs more activation memory than a
// supervised step, and more than one of glibc's per-thread heaps (64 MiB each) of the queue thread that
// allocates it. glibc unmaps an empty heap of such an arena at once, whatever M_TRIM_THRESHOLD says,
// so without the backend's M_TOP_PAD (native/cpu/unet.cpp) every GSURE step run after supervised ones
// faulted ~1,800 fresh pages in again (~7 MiB, 0.5x of a supervised step's CPU time; docs/cpu.md).
// Counted page faults, not time: the check does not depend on the machine's load.
import { describe, expect, it } from 'vitest';
import { runNode } from '../support/node.ts';

const glibc =
  process.platform === 'linux' &&
  Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } })?.header?.glibcVersionRuntime);

describe('CPU memory reuse across GSURE steps', () => {
  it.skipIf(!glibc)('a tiny16 GSURE step after supervised steps reuses its memory instead of faulting it in again', () => {
    const out = runNode(
      `
      import { AdamW, Generator, randn, synchronize, tensor, UNet } from './lib/index.ts';
      import { corruptDataset } from './lib/corruption/dataset.ts';
      import { gsureBatch, gsureSchedule, svdStatistics } from './lib/gsure/train.ts';
      import { gsureStep } from './lib/gsure/step.ts';
      const batch = 16;
      const net = new UNet('tiny16', { device: 'cpu', seed: 0 });
      const opt = new AdamW(net, { lr: 1e-4 });
      const g = new Generator(1);
      const x = randn([batch, 1, 16, 16], { generator: g, device: 'cpu' });
      const t = tensor(Array.from({ length: batch }, (_, i) => (i * 97) % 1000), [batch], { device: 'cpu' });
      // Supervised steps first, as a benchmark or a run that switches methods does.
      for (let i = 0; i < 3; i++) {
        net.zeroGrad();
        const { out, tape } = net.forward(x, t);
        const gout = out.scale(1 / out.numel);
        net.backward(tape, gout);
        opt.step();
        tape.release();
        await synchronize('cpu');
        out.dispose();
        gout.dispose();
      }
      const images = await randn([64, 1, 16, 16], { generator: new Generator(2) }).toArray();
      const set = await corruptDataset(images, [64, 1, 16, 16], { corruption: { kind: 'mask', patch: 4, p: 0.4 }, sigma0: 0.02, seed: 3, device: 'cpu' });
      const stats = await svdStatistics(set);
      const schedule = gsureSchedule(stats.vMax);
      const faults = [];
      for (let s = 0; s < 5; s++) {
        const f0 = process.resourceUsage().minorPageFault;
        net.zeroGrad();
        const rows = Array.from({ length: batch }, (_, i) => (s * batch + i) % 64);
        const { batch: b, dispose } = await gsureBatch(set, rows, stats, 'cpu');
        const r = await gsureStep(net, b, { schedule, seed: 1, step: s, prediction: 'x0' });
        await r.values;
        dispose();
        opt.step();
        await synchronize('cpu');
        faults.push(process.resourceUsage().minorPageFault - f0);
      }
      console.log(JSON.stringify(faults));
    `,
      { KINTSUGI_CPU_THREADS: '1' },
    );
    const faults = JSON.parse(out) as number[];
    // The first two steps grow the heap to the GSURE step's peak; the next three reuse it. Measured on
    // the development machine: [8583, 4, 5, 9, 22] with the fix, [8507, 3457, 3460, 3459, 3466] without.
    const steady = faults.slice(2);
    for (const f of steady) expect(f, `page faults per GSURE step: ${JSON.stringify(faults)}`).toBeLessThan(600);
  });
});
