// The demo's quality bar, measured by the project's own Fashion-MNIST classifier (lib/metrics): the
// share of samples it classifies with confidence >= 0.8, and FD-FMNIST against reference images.
import { fdFmnist, loadFdFmnistClassifier } from '../metrics/fd-fmnist.ts';
import { FD_FMNIST_CLASSES, FdClassifier } from '../metrics/fd-classifier.ts';
import { tensor } from '../tensor.ts';

/** Softmax probabilities [N, 10] of 32x32 images [N, 1, 32, 32] in [-1, 1]. */
export async function classProbabilities(images: Float32Array, n: number, device = 'cpu'): Promise<Float32Array> {
  const { net } = await loadFdFmnistClassifier(device);
  using x = tensor(images, [n, 1, 32, 32], { device });
  const tape = net.forward(x);
  let logits: Float32Array;
  try {
    logits = await tape.logits.toArray();
  } finally {
    FdClassifier.release(tape);
  }
  const out = new Float32Array(n * FD_FMNIST_CLASSES);
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * FD_FMNIST_CLASSES, (i + 1) * FD_FMNIST_CLASSES);
    const max = Math.max(...row);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    for (let k = 0; k < FD_FMNIST_CLASSES; k++) out[i * FD_FMNIST_CLASSES + k] = Math.exp(row[k]! - max) / sum;
  }
  return out;
}

/** Share of 32x32 images [N, 1, 32, 32] whose top class has probability >= threshold. */
export async function confidentShare(images32: Float32Array, n: number, threshold = 0.8, device = 'cpu'): Promise<number> {
  const p = await classProbabilities(images32, n, device);
  let confident = 0;
  for (let i = 0; i < n; i++) if (Math.max(...p.subarray(i * FD_FMNIST_CLASSES, (i + 1) * FD_FMNIST_CLASSES)) >= threshold) confident++;
  return confident / n;
}

export interface DemoQuality {
  /** Share of the samples whose top class has probability >= threshold. */
  confident: number;
  threshold: number;
  /** FD-FMNIST of the samples against the reference images. */
  fd: number;
  /** The top class of each sample (FASHION_MNIST_CLASSES order). */
  classes: number[];
}

export async function demoQuality(
  samples32: Float32Array,
  n: number,
  reference32: Float32Array,
  m: number,
  threshold = 0.8,
  device = 'cpu',
): Promise<DemoQuality> {
  const p = await classProbabilities(samples32, n, device);
  let confident = 0;
  const classes: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from(p.subarray(i * FD_FMNIST_CLASSES, (i + 1) * FD_FMNIST_CLASSES));
    const top = Math.max(...row);
    classes.push(row.indexOf(top));
    if (top >= threshold) confident++;
  }
  const fd = await fdFmnist({ data: samples32, shape: [n, 1, 32, 32] }, { data: reference32, shape: [m, 1, 32, 32] }, { device });
  return { confident: confident / n, threshold, fd, classes };
}
