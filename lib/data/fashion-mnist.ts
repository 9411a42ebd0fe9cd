// Fashion-MNIST (Xiao, Rasul and Vollgraf, Zalando Research, 2017; MIT licence): 28x28 greyscale
// pictures of clothing in 10 classes, 60,000 for training and 10,000 for testing, in IDX files. The
// package ships a subset (the first 2,000 training images, lib/assets/, see FASHION-MNIST-LICENSE.md)
// so examples and tests run offline; the full set is read from Debian's dataset-fashion-mnist package
// or any folder holding the four standard files. Images come out as the models take them: [N, 1, 32, 32]
// in [-1, 1], the 28x28 picture zero-padded (with the background value -1) to the presets' 32x32.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readIdx } from './idx.ts';

export const FASHION_MNIST_CLASSES = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const);

/** Where Debian's dataset-fashion-mnist package puts the four files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
const SUBSET_IMAGES = 'fashion-mnist-subset-images.idx.gz';
const SUBSET_LABELS = 'fashion-mnist-subset-labels.idx.gz';

export interface FashionMnistOptions {
  /** "subset" (default): the 2,000 training images shipped with the package; "debian": DEBIAN_FASHION_MNIST_DIR;
   *  any other string: a directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte, raw or .gz. */
  source?: 'subset' | 'debian' | (string & {});
  /** Default "train". The subset holds training images only. */
  split?: 'train' | 'test';
  /** Keep only the first `limit` images (file order). */
  limit?: number;
  /** Background pixels added on each side (default 2: 28x28 -> 32x32). */
  pad?: number;
}

export interface FashionMnist {
  /** [N, 1, H + 2 pad, W + 2 pad]: 0 -> -1, 255 -> 1, padding -1. */
  images: Float32Array;
  /** Class indices 0..9 (see classNames). */
  labels: Uint8Array;
  shape: [number, 1, number, number];
  classNames: readonly string[];
  /** The image file read. */
  file: string;
}

const missingHelp =
  `install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), which puts the files in ${DEBIAN_FASHION_MNIST_DIR}, ` +
  `or pass the directory that holds train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and ` +
  `t10k-labels-idx1-ubyte(.gz) (https://github.com/zalandoresearch/fashion-mnist) as options.source`;

/** The shipped subset: lib/assets/ is ../assets/ from lib/data/*.ts and ../../lib/assets/ from dist/data/*.js. */
function subsetDir(): string {
  const candidates = ['../assets/', '../../lib/assets/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  const found = candidates.find((dir) => existsSync(join(dir, SUBSET_IMAGES)));
  if (found === undefined)
    throw new Error(
      `the shipped Fashion-MNIST subset (${SUBSET_IMAGES}) is in none of ${candidates.join(', ')} (an incomplete installation?); ${missingHelp}`,
    );
  return found;
}

/** The existing file among `name` and `name.gz` in `dir`. */
function findFile(dir: string, name: string, what: string): string {
  for (const candidate of [name, `${name}.gz`]) if (existsSync(join(dir, candidate))) return join(dir, candidate);
  throw new Error(`${dir}: no ${name} or ${name}.gz (${what}); ${missingHelp}`);
}

/** Loads Fashion-MNIST as padded float images in [-1, 1] with their labels. */
export async function loadFashionMnist(options: FashionMnistOptions = {}): Promise<FashionMnist> {
  const source = options.source ?? 'subset';
  if (typeof source !== 'string' || source === '')
    throw new TypeError(`options.source: expected "subset", "debian" or a directory, got ${JSON.stringify(source)}`);
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new TypeError(`options.split: expected "train" or "test", got ${JSON.stringify(split)}`);
  const pad = options.pad ?? 2;
  if (!Number.isSafeInteger(pad) || pad < 0 || pad > 64)
    throw new TypeError(`options.pad: expected an integer 0..64, got ${JSON.stringify(options.pad)}`);
  const limit = options.limit;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1))
    throw new TypeError(`options.limit: expected a positive integer, got ${JSON.stringify(limit)}`);

  let imagesFile: string;
  let labelsFile: string;
  if (source === 'subset') {
    if (split !== 'train')
      throw new TypeError(
        `options.split: the shipped subset holds training images only, got "${split}"; for the test split pass source: "debian" or a directory (${missingHelp})`,
      );
    const dir = subsetDir();
    [imagesFile, labelsFile] = [join(dir, SUBSET_IMAGES), join(dir, SUBSET_LABELS)];
  } else {
    const dir = source === 'debian' ? DEBIAN_FASHION_MNIST_DIR : source;
    if (!existsSync(dir))
      throw new Error(`${dir}: no such directory (Fashion-MNIST${source === 'debian' ? ' from Debian' : ''}); ${missingHelp}`);
    const prefix = split === 'train' ? 'train' : 't10k';
    imagesFile = findFile(dir, `${prefix}-images-idx3-ubyte`, `${split} images`);
    labelsFile = findFile(dir, `${prefix}-labels-idx1-ubyte`, `${split} labels`);
  }

  const [images, labels] = await Promise.all([readIdx(imagesFile), readIdx(labelsFile)]);
  if (images.type !== 'u8' || images.shape.length !== 3)
    throw new Error(`${imagesFile}: expected uint8 images [N, H, W], got ${images.type} [${images.shape.join(', ')}]`);
  if (labels.type !== 'u8' || labels.shape.length !== 1)
    throw new Error(`${labelsFile}: expected uint8 labels [N], got ${labels.type} [${labels.shape.join(', ')}]`);
  const [total, h, w] = images.shape as [number, number, number];
  if (labels.shape[0] !== total) throw new Error(`${labelsFile}: ${labels.shape[0]} labels for the ${total} images of ${imagesFile}`);
  const n = Math.min(total, limit ?? total);
  const labelData = (labels.data as Uint8Array).slice(0, n);
  const bad = labelData.findIndex((l) => l > 9);
  if (bad >= 0) throw new Error(`${labelsFile}: label ${labelData[bad]} at index ${bad} is outside 0..9`);

  const [H, W] = [h + 2 * pad, w + 2 * pad];
  const out = new Float32Array(n * H * W).fill(-1);
  const pixels = images.data as Uint8Array;
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++) {
      const src = (i * h + y) * w;
      const dst = (i * H + y + pad) * W + pad;
      for (let x = 0; x < w; x++) out[dst + x] = (2 * pixels[src + x]! - 255) / 255;
    }
  return { images: out, labels: labelData, shape: [n, 1, H, W], classNames: FASHION_MNIST_CLASSES, file: imagesFile };
}
