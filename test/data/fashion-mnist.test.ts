// Fashion-MNIST: the shipped subset (shape, range, padding, labels, agreement with the raw IDX files),
// directories of standard files (raw and gzipped), the errors that say how to get the data, and
// Debian's package where it is installed.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, loadFashionMnist } from '../../lib/data/fashion-mnist.ts';
import { readIdx, writeIdx } from '../../lib/data/idx.ts';

const assets = fileURLToPath(new URL('../../lib/assets/', import.meta.url));
const hasDebian = existsSync(join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kintsugi-fmnist-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const scale = (byte: number): number => Math.fround((2 * byte - 255) / 255);
/** Bitwise equality of two typed arrays (toEqual walks millions of elements one by one: seconds). */
const sameBits = (a: ArrayBufferView, b: ArrayBufferView): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('the shipped subset', () => {
  it('holds 2,000 padded images in [-1, 1] with labels 0..9 in every class', async () => {
    const data = await loadFashionMnist();
    expect(data.shape).toEqual([2000, 1, 32, 32]);
    expect(data.images.length).toBe(2000 * 32 * 32);
    expect(data.labels.length).toBe(2000);
    expect(data.classNames).toEqual(FASHION_MNIST_CLASSES);
    expect(data.classNames[9]).toBe('Ankle boot');
    let [lo, hi] = [Infinity, -Infinity];
    for (const v of data.images) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    expect([lo, hi]).toEqual([-1, 1]);
    // The 2-pixel border of every image is the background value -1.
    let border = 0;
    for (let i = 0; i < 2000; i++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) if (y < 2 || y >= 30 || x < 2 || x >= 30) border += data.images[(i * 32 + y) * 32 + x] === -1 ? 0 : 1;
    expect(border).toBe(0);
    const counts = new Array<number>(10).fill(0);
    for (const l of data.labels) counts[l]!++;
    console.log(`Fashion-MNIST subset, images per class: ${counts.map((n, k) => `${k} ${FASHION_MNIST_CLASSES[k]}: ${n}`).join(', ')}`);
    expect(counts.reduce((a, b) => a + b)).toBe(2000);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(150);
  });

  it('matches the raw IDX files pixel for pixel, and is small', async () => {
    const raw = await readIdx(join(assets, 'fashion-mnist-subset-images.idx.gz'));
    expect(raw).toMatchObject({ type: 'u8', shape: [2000, 28, 28] });
    const labels = await readIdx(join(assets, 'fashion-mnist-subset-labels.idx.gz'));
    expect(labels).toMatchObject({ type: 'u8', shape: [2000] });
    const data = await loadFashionMnist({ limit: 3, pad: 0 });
    expect(data.shape).toEqual([3, 1, 28, 28]);
    expect(data.images).toEqual(Float32Array.from(raw.data.subarray(0, 3 * 784), scale));
    expect(data.labels).toEqual((labels.data as Uint8Array).subarray(0, 3));
    const padded = await loadFashionMnist({ limit: 1, pad: 3 });
    expect(padded.shape).toEqual([1, 1, 34, 34]);
    expect(padded.images[3 * 34 + 3]).toBe(scale(raw.data[0]!));
    expect(padded.images[(3 + 27) * 34 + 3 + 27]).toBe(scale(raw.data[783]!));
    const size =
      (await stat(join(assets, 'fashion-mnist-subset-images.idx.gz'))).size +
      (await stat(join(assets, 'fashion-mnist-subset-labels.idx.gz'))).size;
    expect(size).toBeLessThan(1024 * 1024);
    expect(existsSync(join(assets, 'FASHION-MNIST-LICENSE.md'))).toBe(true);
  });

  it('has no test split, and checks its options', async () => {
    await expect(loadFashionMnist({ split: 'test' })).rejects.toThrow(
      /the shipped subset holds training images only.*pass source: "debian" or a directory/,
    );
    await expect(loadFashionMnist({ limit: 0 })).rejects.toThrow(/options\.limit: expected a positive integer, got 0/);
    await expect(loadFashionMnist({ pad: -1 })).rejects.toThrow(/options\.pad: expected an integer 0\.\.64, got -1/);
    await expect(loadFashionMnist({ split: 'val' as 'test' })).rejects.toThrow(/options\.split: expected "train" or "test", got "val"/);
    expect((await loadFashionMnist({ limit: 5000 })).shape[0]).toBe(2000);
  });
});

describe('a directory of standard files', () => {
  it('reads raw and gzipped files, preferring the raw name', async () => {
    const d = join(dir, 'standard');
    await mkdir(d);
    const images = Uint8Array.from({ length: 3 * 28 * 28 }, (_, i) => (i * 13) & 255);
    await writeIdx(join(d, 'train-images-idx3-ubyte'), { shape: [3, 28, 28], data: images });
    await writeIdx(join(d, 'train-labels-idx1-ubyte.gz'), { shape: [3], data: Uint8Array.of(9, 0, 4) });
    const data = await loadFashionMnist({ source: d, pad: 0 });
    expect(data.shape).toEqual([3, 1, 28, 28]);
    expect(data.images).toEqual(Float32Array.from(images, scale));
    expect(data.labels).toEqual(Uint8Array.of(9, 0, 4));
    expect(data.file).toBe(join(d, 'train-images-idx3-ubyte'));
    await expect(loadFashionMnist({ source: d, split: 'test' })).rejects.toThrow(
      `${d}: no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz (test images); install Debian's dataset-fashion-mnist`,
    );
  });

  it('refuses mismatched or invalid files', async () => {
    const d = join(dir, 'bad');
    await mkdir(d);
    await writeIdx(join(d, 'train-images-idx3-ubyte.gz'), { shape: [2, 28, 28], data: new Uint8Array(2 * 784) });
    await writeIdx(join(d, 'train-labels-idx1-ubyte.gz'), { shape: [3], data: Uint8Array.of(1, 2, 3) });
    await expect(loadFashionMnist({ source: d })).rejects.toThrow(
      /train-labels-idx1-ubyte\.gz: 3 labels for the 2 images of .*train-images-idx3-ubyte\.gz/,
    );
    await writeIdx(join(d, 'train-labels-idx1-ubyte.gz'), { shape: [2], data: Uint8Array.of(1, 12) });
    await expect(loadFashionMnist({ source: d })).rejects.toThrow(/label 12 at index 1 is outside 0\.\.9/);
    await writeIdx(join(d, 'train-labels-idx1-ubyte.gz'), { shape: [2, 1], data: Uint8Array.of(1, 2) });
    await expect(loadFashionMnist({ source: d })).rejects.toThrow(/expected uint8 labels \[N\], got u8 \[2, 1\]/);
    await writeIdx(join(d, 'train-images-idx3-ubyte.gz'), { shape: [2, 784], data: new Uint8Array(2 * 784) });
    await expect(loadFashionMnist({ source: d })).rejects.toThrow(/expected uint8 images \[N, H, W\], got u8 \[2, 784\]/);
  });

  it('says how to get the data when it is missing', async () => {
    const missing = join(dir, 'nowhere');
    await expect(loadFashionMnist({ source: missing })).rejects.toThrow(
      `${missing}: no such directory (Fashion-MNIST); install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), which puts the files in /usr/share/datasets/fashion-mnist, or pass the directory that holds train-images-idx3-ubyte(.gz)`,
    );
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await expect(loadFashionMnist({ source: empty })).rejects.toThrow(
      /no train-images-idx3-ubyte or train-images-idx3-ubyte\.gz \(train images\); install Debian's/,
    );
  });
});

describe("Debian's dataset-fashion-mnist", () => {
  it.skipIf(!hasDebian)(`reads ${DEBIAN_FASHION_MNIST_DIR}: 60,000 + 10,000 images; the subset is its first 2,000`, async () => {
    const test = await loadFashionMnist({ source: 'debian', split: 'test' });
    expect(test.shape).toEqual([10000, 1, 32, 32]);
    const counts = new Array<number>(10).fill(0);
    for (const l of test.labels) counts[l]!++;
    expect(counts).toEqual(new Array(10).fill(1000));
    const train = await loadFashionMnist({ source: 'debian', limit: 2000 });
    const subset = await loadFashionMnist();
    expect(train.shape).toEqual(subset.shape);
    expect(sameBits(train.images, subset.images)).toBe(true);
    expect(sameBits(train.labels, subset.labels)).toBe(true);
    const full = await readIdx(join(DEBIAN_FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'));
    expect(full.shape).toEqual([60000]);
  });

  it.skipIf(hasDebian)(`without ${DEBIAN_FASHION_MNIST_DIR}, source "debian" says how to install it`, async () => {
    await expect(loadFashionMnist({ source: 'debian' })).rejects.toThrow(
      /no such directory \(Fashion-MNIST from Debian\); install Debian's dataset-fashion-mnist/,
    );
  });

  it('copies of the shipped files work as a source directory', async () => {
    // The subset renamed to the standard names: the same loader path users take for their own copies.
    const d = join(dir, 'copied');
    await mkdir(d);
    await copyFile(join(assets, 'fashion-mnist-subset-images.idx.gz'), join(d, 'train-images-idx3-ubyte.gz'));
    await copyFile(join(assets, 'fashion-mnist-subset-labels.idx.gz'), join(d, 'train-labels-idx1-ubyte.gz'));
    const a = await loadFashionMnist({ source: d, limit: 10 });
    const b = await loadFashionMnist({ limit: 10 });
    expect(a.images).toEqual(b.images);
  });
});
