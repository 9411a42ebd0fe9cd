// FD-FMNIST: the Fréchet distance between the Gaussian fits of two image sets in the 128-d feature
// space of the Fashion-MNIST classifier shipped with the package (lib/assets/fd-fmnist.safetensors,
// trained by kintsugi itself: scripts/train-fd-fmnist.ts; its test accuracy is in the file's metadata).
// It plays the role FID plays for natural images, with a network matched to 32x32 greyscale garments;
// it is not FID and its values are not comparable with FID values.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveDevice } from '../device.ts';
import { readSafetensors } from '../safetensors.ts';
import { tensor } from '../tensor.ts';
import { checkInteger, hostBatch, type SampleBatch } from './batch.ts';
import { FD_FMNIST_CLASSES, FD_FMNIST_FEATURES, FD_FMNIST_PARAMS, FdClassifier } from './fd-classifier.ts';
import { frechetDistanceGaussians } from './frechet.ts';
import { meanAndCovariance } from './linalg.ts';

export const FD_FMNIST_WEIGHTS = 'fd-fmnist.safetensors';

export interface FdFmnistOptions {
  /** Where the classifier runs: "cpu", "cuda", "cuda:N" (default: defaultDevice()). */
  device?: string;
  /** Images per forward pass (default 500). */
  batchSize?: number;
}

/** The shipped weights: lib/assets/ is ../assets/ from lib/metrics/*.ts and ../../lib/assets/ from dist/metrics/*.js. */
export function fdFmnistWeightsPath(): string {
  const candidates = ['../assets/', '../../lib/assets/'].map((rel) =>
    join(fileURLToPath(new URL(rel, import.meta.url)), FD_FMNIST_WEIGHTS),
  );
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined)
    throw new Error(`the FD-FMNIST classifier weights are in none of ${candidates.join(', ')} (an incomplete installation?)`);
  return found;
}

const loaded = new Map<string, Promise<{ net: FdClassifier; metadata: Record<string, string> }>>();

/** The shipped classifier on `device` (loaded once per device) and its metadata (accuracy, training). */
export function loadFdFmnistClassifier(device?: string): Promise<{ net: FdClassifier; metadata: Record<string, string> }> {
  const dev = resolveDevice(device, 'options.device');
  let p = loaded.get(dev);
  if (p === undefined) {
    p = (async () => {
      const path = fdFmnistWeightsPath();
      const file = await readSafetensors(path);
      if (file.metadata.format !== 'kintsugi-fd-fmnist')
        throw new Error(`${path}: not FD-FMNIST classifier weights (metadata format ${JSON.stringify(file.metadata.format)})`);
      for (const [name, shape] of FD_FMNIST_PARAMS) {
        const e = file.tensors.get(name);
        if (e === undefined || e.shape.join() !== shape.join())
          throw new Error(`${path}: ${name} should have shape ${JSON.stringify(shape)}, got ${e ? JSON.stringify(e.shape) : 'nothing'}`);
      }
      return { net: new FdClassifier(new Map([...file.tensors].map(([k, e]) => [k, e.data])), dev), metadata: file.metadata };
    })();
    p.catch(() => loaded.delete(dev));
    loaded.set(dev, p);
  }
  return p;
}

/** Images [N, 1, 32, 32] (or [N, 1, 28, 28], padded with the background -1 as Fashion-MNIST is) as 32x32 host values. */
async function images32(images: SampleBatch, what: string): Promise<{ data: Float32Array; n: number }> {
  const b = await hostBatch(images, what, 4);
  const [n, c, h, w] = b.shape as [number, number, number, number];
  if (c !== 1 || h !== w || (h !== 32 && h !== 28))
    throw new RangeError(
      `${what}: expected greyscale Fashion-MNIST-sized images [N, 1, 32, 32] or [N, 1, 28, 28] in [-1, 1], got ${JSON.stringify(b.shape)}`,
    );
  const bad = b.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new RangeError(`${what}: value ${b.data[bad]} at index ${bad} (image ${Math.floor(bad / b.size)}) is not finite`);
  if (h === 32) return { data: b.data instanceof Float32Array ? b.data : Float32Array.from(b.data), n };
  const out = new Float32Array(n * 1024).fill(-1);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) out[i * 1024 + (y + 2) * 32 + x + 2] = b.data[i * 784 + y * 28 + x]!;
  return { data: out, n };
}

/** Runs the classifier over the images in batches: features [N, 128] and logits [N, 10]. */
async function run(
  images: SampleBatch,
  what: string,
  options: FdFmnistOptions,
): Promise<{ features: Float32Array; logits: Float32Array; n: number }> {
  const batchSize = checkInteger(options.batchSize ?? 500, 'options.batchSize', 1);
  const { data, n } = await images32(images, what);
  const { net } = await loadFdFmnistClassifier(options.device);
  const features = new Float32Array(n * FD_FMNIST_FEATURES);
  const logits = new Float32Array(n * FD_FMNIST_CLASSES);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    using x = tensor(data.subarray(s * 1024, (s + m) * 1024), [m, 1, 32, 32], { device: net.device });
    const tape = net.forward(x);
    try {
      features.set(await tape.features.toArray(), s * FD_FMNIST_FEATURES);
      logits.set(await tape.logits.toArray(), s * FD_FMNIST_CLASSES);
    } finally {
      FdClassifier.release(tape);
    }
  }
  return { features, logits, n };
}

/** The 128-d FD-FMNIST features of images [N, 1, 32, 32] in [-1, 1]: { data, shape: [N, 128] }. */
export async function fdFmnistFeatures(
  images: SampleBatch,
  options: FdFmnistOptions = {},
): Promise<{ data: Float32Array; shape: [number, number] }> {
  const { features, n } = await run(images, 'images', options);
  return { data: features, shape: [n, FD_FMNIST_FEATURES] };
}

/** The classifier's predicted class (0..9, FASHION_MNIST_CLASSES order) of each image. */
export async function fdFmnistClassify(images: SampleBatch, options: FdFmnistOptions = {}): Promise<Uint8Array> {
  const { logits, n } = await run(images, 'images', options);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * FD_FMNIST_CLASSES, (i + 1) * FD_FMNIST_CLASSES);
    out[i] = row.indexOf(Math.max(...row));
  }
  return out;
}

/**
 * FD-FMNIST of `samples` against `reference` (each [N, 1, 32, 32] or [N, 1, 28, 28] in [-1, 1], N >= 2):
 * the squared Fréchet distance between the Gaussian fits of their classifier features. Like FID it is
 * biased upwards for small N; compare values computed with the same numbers of images.
 */
export async function fdFmnist(samples: SampleBatch, reference: SampleBatch, options: FdFmnistOptions = {}): Promise<number> {
  const [a, b] = [await run(samples, 'samples', options), await run(reference, 'reference', options)];
  for (const [name, r] of [
    ['samples', a],
    ['reference', b],
  ] as const)
    if (r.n < 2) throw new RangeError(`${name}: FD-FMNIST needs at least 2 images, got ${r.n}`);
  return frechetDistanceGaussians(
    meanAndCovariance(a.features, a.n, FD_FMNIST_FEATURES),
    meanAndCovariance(b.features, b.n, FD_FMNIST_FEATURES),
  );
}
