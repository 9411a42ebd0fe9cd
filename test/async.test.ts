// Native work runs off the JS thread: the event loop keeps turning while a long operation runs, and
// a process with nothing left to wait for exits on its own.
import { describe, expect, it } from 'vitest';
import { Generator, randn, synchronize } from '../lib/index.ts';
import { countLoopTurns } from './helpers.ts';
import { runNode } from './support/node.ts';

describe('the event loop is never blocked', () => {
  it('the event loop keeps turning while a long CPU operation runs', async () => {
    // 2^24 normal draws and their read-back: tens of milliseconds or more of native work. Counted in
    // loop turns, not milliseconds (a timed assertion failed under load): work done on the JS thread
    // would let the loop turn at most once or twice before the result is there; queued work on the
    // device thread lets it turn freely (thousands of times) until the result arrives.
    const { turns } = await countLoopTurns(async () => {
      const t = randn([1 << 24], { generator: new Generator(1), device: 'cpu' });
      await t.toArray();
      t.dispose();
    });
    expect(turns).toBeGreaterThanOrEqual(3);
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
