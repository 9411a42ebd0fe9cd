// `kintsugi eval`: FD-FMNIST, precision/recall and SWD of a set of samples against reference images.
// The sets come from a folder of PNGs, a .npy array, or Fashion-MNIST itself.
import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEBIAN_FASHION_MNIST_DIR, loadFashionMnist } from '../data/fashion-mnist.ts';
import { readImageFolder } from '../data/images.ts';
import { readNpy } from '../data/npy.ts';
import { checkInteger } from './batch.ts';
import { fdFmnistFeatures, loadFdFmnistClassifier } from './fd-fmnist.ts';
import { frechetDistance } from './frechet.ts';
import { precisionRecall } from './precision-recall.ts';
import { slicedWasserstein } from './sliced-wasserstein.ts';

export const EVAL_HELP = `usage: kintsugi eval --samples SRC --ref SRC [options]

Compares generated images with reference images: FD-FMNIST (the squared Fréchet distance between
Gaussian fits of the features of kintsugi's Fashion-MNIST classifier; not FID), precision and recall
in the same features (Kynkäänniemi et al. 2019), and the sliced Wasserstein distance of the pixels.

sources (greyscale 32x32 or 28x28 images; 28x28 are padded to 32x32 with the background -1):
  DIR               a folder of .png files (0..255 -> [-1, 1])
  FILE.npy          [N, 1, H, W] or [N, H, W]: float32/float64 in [-1, 1], or uint8 in 0..255
  fashion-mnist     Fashion-MNIST training images (${DEBIAN_FASHION_MNIST_DIR}, else the 2,000 shipped)
  fashion-mnist:test  the 10,000 test images (needs ${DEBIAN_FASHION_MNIST_DIR})

options:
  --samples SRC     the generated images
  --ref SRC         the reference images
  --limit N         use the first N images of each set (default 10000; precision/recall cost grows as N^2)
  --k K             the neighbour of precision/recall's radii (default 3)
  --projections L   SWD directions (default 128)
  --seed S          SWD seed (default 0)
  --device D        where the classifier runs: cpu | cuda | cuda:N
  --json            print one JSON object instead of a table

examples:
  kintsugi eval --samples samples.npy --ref fashion-mnist:test
  kintsugi eval --samples out/ --ref reference.npy --json`;

interface ImageSet {
  data: Float32Array;
  shape: [number, 1, 32, 32];
  source: string;
}

/** 28x28 images padded to 32x32 with -1, as Fashion-MNIST is; 32x32 passes through. */
function to32(data: ArrayLike<number>, n: number, h: number, w: number, what: string): Float32Array {
  if (h === 32 && w === 32) return data instanceof Float32Array ? data : Float32Array.from(data);
  if (h !== 28 || w !== 28) throw new Error(`${what}: expected greyscale 32x32 or 28x28 images, got ${h}x${w}`);
  const out = new Float32Array(n * 1024).fill(-1);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) out[i * 1024 + (y + 2) * 32 + x + 2] = data[i * 784 + y * 28 + x]!;
  return out;
}

/** Reads one source (see EVAL_HELP), keeping its first `limit` images. */
export async function readImageSet(spec: string, limit: number, what: string): Promise<ImageSet> {
  const fm = /^fashion-mnist(?::(train|test))?$/.exec(spec);
  if (fm) {
    const split = (fm[1] ?? 'train') as 'train' | 'test';
    const debian = existsSync(DEBIAN_FASHION_MNIST_DIR);
    if (split === 'test' && !debian)
      throw new Error(
        `${what}: fashion-mnist:test needs the test set in ${DEBIAN_FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist); the package ships training images only: use --ref fashion-mnist`,
      );
    const d = await loadFashionMnist({ source: debian ? 'debian' : 'subset', split, limit });
    return { data: d.images, shape: [d.shape[0], 1, 32, 32], source: `${d.file} (Fashion-MNIST ${split})` };
  }
  if (!existsSync(spec)) throw new Error(`${what}: "${spec}" is neither a folder, a .npy file, fashion-mnist nor fashion-mnist:test`);
  if (statSync(spec).isDirectory()) {
    const f = await readImageFolder(spec, { channels: 1 });
    const n = Math.min(limit, f.shape[0]);
    return {
      data: to32(f.data.subarray(0, n * f.shape[2] * f.shape[3]), n, f.shape[2], f.shape[3], `${what} ${spec}`),
      shape: [n, 1, 32, 32],
      source: spec,
    };
  }
  if (!spec.toLowerCase().endsWith('.npy'))
    throw new Error(`${what}: "${spec}" is a file but not a .npy array; pass a folder of PNGs, a .npy file or fashion-mnist[:test]`);
  const a = await readNpy(spec);
  const s = a.shape;
  if (!(s.length === 3 || (s.length === 4 && s[1] === 1)))
    throw new Error(`${what}: ${spec} has shape [${s.join(', ')}], expected [N, 1, H, W] or [N, H, W] (greyscale)`);
  const [n, h, w] = [Math.min(limit, s[0]!), s[s.length - 2]!, s[s.length - 1]!];
  const values = a.data.subarray(0, n * h * w);
  const scaled = a.dtype === 'uint8' ? Float32Array.from(values, (v) => (2 * v - 255) / 255) : values;
  return { data: to32(scaled, n, h, w, `${what} ${spec}`), shape: [n, 1, 32, 32], source: spec };
}

export async function evalCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      samples: { type: 'string' },
      ref: { type: 'string' },
      limit: { type: 'string' },
      k: { type: 'string' },
      projections: { type: 'string' },
      seed: { type: 'string' },
      device: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return console.log(EVAL_HELP);
  if (!values.samples || !values.ref) throw new Error('eval: --samples SRC and --ref SRC are required (see kintsugi eval --help)');
  const int = (v: string | undefined, fallback: number, what: string, min: number) =>
    checkInteger(v === undefined ? fallback : Number(v), what, min);
  const limit = int(values.limit, 10000, '--limit', 2);
  const k = int(values.k, 3, '--k', 1);
  const projections = int(values.projections, 128, '--projections', 1);
  const seed = int(values.seed, 0, '--seed', 0);
  const device = values.device;

  const samples = await readImageSet(values.samples, limit, '--samples');
  const reference = await readImageSet(values.ref, limit, '--ref');
  const { metadata } = await loadFdFmnistClassifier(device);
  const [fs, fr] = [await fdFmnistFeatures(samples, { device }), await fdFmnistFeatures(reference, { device })];
  const fd = await frechetDistance(fs, fr);
  const pr = await precisionRecall(fs, fr, { k, device });
  const swd = await slicedWasserstein(samples, reference, { projections, seed });
  const accuracy = Number(metadata.test_accuracy);

  if (values.json) {
    console.log(
      JSON.stringify({
        samples: { source: samples.source, n: samples.shape[0] },
        reference: { source: reference.source, n: reference.shape[0] },
        fdFmnist: fd,
        precision: pr.precision,
        recall: pr.recall,
        k,
        swd,
        projections,
        seed,
        classifierTestAccuracy: accuracy,
      }),
    );
    return;
  }
  console.log(`samples:   ${samples.shape[0]} images from ${samples.source}`);
  console.log(`reference: ${reference.shape[0]} images from ${reference.source}`);
  console.log(`FD-FMNIST  ${fd.toFixed(3).padStart(9)}   squared Fréchet distance of classifier features (lower is better; not FID)`);
  console.log(`precision  ${pr.precision.toFixed(4).padStart(9)}   share of samples inside the reference manifold (k=${k})`);
  console.log(`recall     ${pr.recall.toFixed(4).padStart(9)}   share of the reference inside the samples' manifold`);
  console.log(
    `SWD        ${swd.toFixed(4).padStart(9)}   sliced Wasserstein distance of the pixels in [-1, 1] (${projections} projections, seed ${seed})`,
  );
  console.log(`(classifier: test accuracy ${(100 * accuracy).toFixed(2)}% on Fashion-MNIST; lib/assets/fd-fmnist.safetensors)`);
}
