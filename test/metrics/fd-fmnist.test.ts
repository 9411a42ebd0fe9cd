// The shipped FD-FMNIST classifier and the metric built on it: the weights load and classify real
// Fashion-MNIST images far above chance (the 10,000-image test set when Debian's package is installed,
// checking the accuracy the file claims), FD of a set against itself is 0, and FD grows monotonically
// as Gaussian noise of increasing strength is added to real images.
import { existsSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEBIAN_FASHION_MNIST_DIR, loadFashionMnist } from '../../lib/data/fashion-mnist.ts';
import { fdFmnist, fdFmnistClassify, fdFmnistFeatures, frechetDistance, loadFdFmnistClassifier } from '../../lib/index.ts';
import { FD_FMNIST_ARCHITECTURE } from '../../lib/metrics/fd-classifier.ts';
import { fdFmnistWeightsPath } from '../../lib/metrics/fd-fmnist.ts';
import { seededNormals } from '../../lib/metrics/normals.ts';

const hasTestSet = existsSync(DEBIAN_FASHION_MNIST_DIR);
const accuracyOf = (predicted: Uint8Array, labels: Uint8Array) =>
  predicted.reduce((s, p, i) => s + (p === labels[i] ? 1 : 0), 0) / labels.length;

describe('the shipped FD-FMNIST classifier', () => {
  it('loads, is under 1 MB and states its architecture and test accuracy', async () => {
    expect(statSync(fdFmnistWeightsPath()).size).toBeLessThan(1 << 20);
    const { metadata } = await loadFdFmnistClassifier('cpu');
    expect(metadata.architecture).toBe(FD_FMNIST_ARCHITECTURE);
    expect(Number(metadata.test_accuracy)).toBeGreaterThanOrEqual(0.88);
    expect(metadata.test_images).toBe('10000');
  });

  it('classifies the shipped Fashion-MNIST subset far above chance (10%)', async () => {
    // These 2,000 images are training images of the classifier: this checks the shipped weights work at all.
    const data = await loadFashionMnist({ limit: 1000 });
    expect(accuracyOf(await fdFmnistClassify({ data: data.images, shape: data.shape }), data.labels)).toBeGreaterThan(0.85);
  });

  it.skipIf(!hasTestSet)(
    `reaches the accuracy its metadata claims on held-out test images (needs ${DEBIAN_FASHION_MNIST_DIR}; skipped when absent)`,
    async () => {
      const test = await loadFashionMnist({ source: 'debian', split: 'test', limit: 2000 });
      const { metadata } = await loadFdFmnistClassifier('cpu');
      const accuracy = accuracyOf(await fdFmnistClassify({ data: test.images, shape: test.shape }), test.labels);
      // 2,000 of the 10,000 images: a binomial standard error of about 0.7 points.
      expect(Math.abs(accuracy - Number(metadata.test_accuracy))).toBeLessThan(0.025);
    },
  );
});

describe('FD-FMNIST', () => {
  it('is 0 for a set against itself and grows monotonically as Gaussian noise is added to it', async () => {
    // The reference against noised copies of itself (as FID's noise experiment): any change of the
    // images moves the features, so FD starts at 0 and must grow with the noise.
    const n = 500;
    const data = await loadFashionMnist({ limit: n });
    const ref = { data: data.images, shape: [n, 1, 32, 32] };
    expect(await fdFmnist(ref, ref)).toBeLessThan(1e-9);
    const fr = await fdFmnistFeatures(ref);
    const noise = seededNormals(data.images.length, 42n, 0n);
    const values: number[] = [];
    for (const sigma of [0.02, 0.05, 0.1, 0.2, 0.4, 0.8]) {
      const noisy = data.images.map((v, k) => Math.min(1, Math.max(-1, v + sigma * noise[k]!)));
      values.push(await frechetDistance(await fdFmnistFeatures({ data: noisy, shape: ref.shape }), fr));
    }
    expect(values[0]).toBeGreaterThan(0);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]!);
  });

  it('of two disjoint sets of real images is above 0 (the finite-sample floor) and far below heavy noise', async () => {
    // Two different sets of 500 clean images: FD is not 0 (each Gaussian fit has sampling error in 128-d),
    // but far below what heavy noise gives.
    const data = await loadFashionMnist({ limit: 1000 });
    const half = (i: number) => ({ data: data.images.subarray(i * 500 * 1024, (i + 1) * 500 * 1024), shape: [500, 1, 32, 32] });
    const between = await fdFmnist(half(0), half(1));
    const noise = seededNormals(500 * 1024, 43n, 0n);
    const heavy = half(0).data.map((v, k) => Math.min(1, Math.max(-1, v + 0.8 * noise[k]!)));
    expect(between).toBeGreaterThan(1);
    expect(between * 5).toBeLessThan(await fdFmnist({ data: heavy, shape: [500, 1, 32, 32] }, half(1)));
  });

  it('pads 28x28 images as Fashion-MNIST is padded, and equals the Fréchet distance of the features', async () => {
    const [raw, padded] = [await loadFashionMnist({ limit: 40, pad: 0 }), await loadFashionMnist({ limit: 40 })];
    const [a, b] = [
      { data: raw.images.subarray(0, 20 * 784), shape: [20, 1, 28, 28] },
      { data: padded.images.subarray(20 * 1024), shape: [20, 1, 32, 32] },
    ];
    const fd = await fdFmnist(a, b);
    const fa = await fdFmnistFeatures({ data: padded.images.subarray(0, 20 * 1024), shape: [20, 1, 32, 32] });
    expect(fd).toBeCloseTo(await frechetDistance(fa, await fdFmnistFeatures(b)), 9);
    expect(fd).toBeGreaterThan(0);
  });

  it('rejects images of another kind and non-finite values, naming what was passed', async () => {
    await expect(
      fdFmnist(
        { data: new Float32Array(2 * 3 * 1024), shape: [2, 3, 32, 32] },
        { data: new Float32Array(2 * 1024), shape: [2, 1, 32, 32] },
      ),
    ).rejects.toThrow(
      /samples: expected greyscale Fashion-MNIST-sized images \[N, 1, 32, 32\] or \[N, 1, 28, 28\] in \[-1, 1\], got \[2,3,32,32\]/,
    );
    const bad = new Float32Array(2 * 1024);
    bad[1500] = NaN;
    await expect(fdFmnistFeatures({ data: bad, shape: [2, 1, 32, 32] })).rejects.toThrow(
      /images: value NaN at index 1500 \(image 1\) is not finite/,
    );
  });
});
