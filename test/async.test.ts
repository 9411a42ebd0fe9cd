// Native work runs off the JS thread: the event loop keeps turning while a long operation runs, and
// a process with nothing left to wait for exits on its own.
import { describe, expect, it } from 'vitest';
import { Generator, randn, synchronize } from '../lib/index.ts';
import { measureEventLoop } from './helpers.ts';
import { runNode } from './support/node.ts';

describe('the event loop is never blocked', () => {
  it('setInterval keeps ticking while a long CPU operation runs', async () => {
    // Grow the work until it takes long enough to measure (at least 300 ms) on this machine.
    for (let n = 1 << 22; ; n *= 2) {
      let queuedIn = 0;
      const { ticks, longestGap, took } = await measureEventLoop(async () => {
        const start = performance.now();
        const t = randn([n], { generator: new Generator(1), device: 'cpu' });
        queuedIn = performance.now() - start;
        await t.toArray();
        t.dispose();
      });
      if (took < 300 && n < 1 << 28) continue;
      // Queuing returned at once; the loop ticked throughout (a blocked loop gives ~1 tick and one gap
      // as long as the whole operation).
      expect(queuedIn).toBeLessThan(took / 4);
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(longestGap).toBeLessThan(took * 0.8);
      return;
    }
  });
});

describe('process lifetime', () => {
  it('pending work keeps the process alive until it settles, then the process exits by itself', () => {
    const code = [
      "import { randn, Generator } from './lib/index.ts';",
      "const t = randn([1 << 22], { generator: new Generator(5), device: 'cpu' });",
      "t.sum().toArray().then((s) => console.log('sum', Number.isFinite(s[0])));",
    ].join('\n');
    const out = runNode(code);
    expect(out).toBe('sum true');
  });

  it('synchronize resolves after queued work', async () => {
    const t = randn([1 << 16], { device: 'cpu' });
    await expect(synchronize('cpu')).resolves.toBeUndefined();
    t.dispose();
  });
});
