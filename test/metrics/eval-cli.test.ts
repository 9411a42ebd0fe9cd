// `kintsugi eval` end to end: samples from a .npy file and from a folder of PNGs against Fashion-MNIST,
// the table and --json outputs, and the errors for missing or unreadable sources.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../../lib/data/fashion-mnist.ts';
import { encodeNpy } from '../../lib/data/npy.ts';
import { imageToPng } from '../../lib/data/png.ts';
import { runCli } from '../support/node.ts';

const cli = runCli;

const dir = mkdtempSync(join(tmpdir(), 'kintsugi-eval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** The JSON of real samples against real images (first test), for the second to compare with. */
let real: Record<string, number> = {};

describe('kintsugi eval', () => {
  it('prints FD-FMNIST, precision, recall and SWD for .npy samples against Fashion-MNIST, as a table and as JSON', async () => {
    // Samples: shipped images 1000..1299 (not the reference's first 300), as raw 28x28 uint8, the way a user might save them.
    const data = await loadFashionMnist({ limit: 1300, pad: 0 });
    const bytes = Uint8Array.from(data.images.subarray(1000 * 784), (v) => Math.round(((v + 1) * 255) / 2));
    writeFileSync(join(dir, 'samples.npy'), encodeNpy({ shape: [300, 28, 28], data: bytes }));
    const r = cli(['eval', '--samples', join(dir, 'samples.npy'), '--ref', 'fashion-mnist', '--limit', '300']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/samples: {3}300 images from .*samples\.npy/);
    expect(r.stdout).toMatch(/reference: 300 images from .*\(Fashion-MNIST train\)/);
    for (const name of ['FD-FMNIST', 'precision', 'recall', 'SWD']) expect(r.stdout).toMatch(new RegExp(`^${name} +[0-9.]+ `, 'm'));

    const j = cli(['eval', '--samples', join(dir, 'samples.npy'), '--ref', 'fashion-mnist', '--limit', '300', '--json']);
    expect(j.status, j.stderr).toBe(0);
    const out = (real = JSON.parse(j.stdout) as Record<string, number>);
    // Real images against real images: a small distance, and most of each set inside the other's manifold.
    expect(out.fdFmnist).toBeGreaterThan(0);
    expect(out.precision).toBeGreaterThan(0.6);
    expect(out.recall).toBeGreaterThan(0.6);
    expect(out.swd).toBeGreaterThan(0);
    expect(out.k).toBe(3);
    expect(out.classifierTestAccuracy).toBeGreaterThanOrEqual(0.88);
  });

  it('reads a folder of PNGs; noise-only samples score far worse than real ones', async () => {
    const folder = join(dir, 'noise');
    mkdirSync(folder);
    let s = 1;
    for (let i = 0; i < 300; i++) {
      const img = Float32Array.from({ length: 1024 }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31 - 1);
      writeFileSync(join(folder, `${String(i).padStart(3, '0')}.png`), imageToPng(img, [1, 32, 32]));
    }
    const r = cli(['eval', '--samples', folder, '--ref', 'fashion-mnist', '--limit', '300', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const noise = JSON.parse(r.stdout) as Record<string, number>;
    // Same set sizes as the real samples of the test above (FD's finite-sample floor depends on N).
    expect(noise.fdFmnist).toBeGreaterThan(5 * real.fdFmnist!);
    expect(noise.precision).toBeLessThan(real.precision!);
    expect(noise.swd).toBeGreaterThan(real.swd!);
  });

  it('explains what is missing or wrong', () => {
    expect(cli(['eval', '--help']).stdout).toMatch(/examples:/);
    expect(cli(['eval', '--samples', 'x.npy']).stderr).toContain('--samples SRC and --ref SRC are required');
    expect(cli(['eval', '--samples', join(dir, 'nope'), '--ref', 'fashion-mnist']).stderr).toMatch(
      /--samples: ".*nope" is neither a folder, a \.npy file, fashion-mnist nor fashion-mnist:test/,
    );
  });
});
