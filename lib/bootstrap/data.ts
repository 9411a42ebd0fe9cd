// Data sets of views derived from a clean data set (docs/bootstrap.md): the downsampled copies that
// train the low-resolution view model, and random crops that train the patch model. A user with their
// own low-resolution images or crops passes them to train() directly instead.
import { readNpy } from '../data/npy.ts';
import { philoxIntegers } from '../random.ts';
import { tensor } from '../tensor.ts';
import type { Dataset } from '../train.ts';
import { avgPool } from './views.ts';

const CHUNK = 1024; // images pooled per device call: bounded memory for any data set size

/** Every image r×r average-pooled (the A of the views), [N, C, H/r, W/r], computed on `device`. */
export async function lowresDataset(data: Dataset, r: number, options: { device?: string } = {}): Promise<Dataset> {
  const [N, C, H, W] = data.shape;
  if (!Number.isInteger(r) || r < 1 || H % r !== 0 || W % r !== 0)
    throw new RangeError(`lowresDataset: r must be a positive integer dividing ${H}x${W}, got ${r}`);
  const per = C * H * W;
  const small = per / (r * r);
  const images = new Float32Array(N * small);
  for (let b = 0; b < N; b += CHUNK) {
    const n = Math.min(CHUNK, N - b);
    const x = tensor(data.images.subarray(b * per, (b + n) * per), [n, C, H, W], { device: options.device });
    const y = avgPool(x, r);
    x.dispose();
    images.set(await y.toArray(), b * small);
    y.dispose();
  }
  return { images, shape: [N, C, H / r, W / r] };
}

/** Crops and where they were cut: offsets[2k], offsets[2k + 1] = row, column of crop k in its image. */
export interface CropDataset extends Dataset {
  offsets: Int32Array;
  imageSize: readonly [number, number];
}

/**
 * `count` size×size crops at uniformly random images and offsets (every offset, not only the patch
 * grid of the aggregation: the patch model must denoise a patch wherever it sits), drawn from the
 * Philox stream of `seed`, so the same seed gives the same crops.
 */
export function cropDataset(data: Dataset, options: { size: number; count: number; seed?: bigint | number }): CropDataset {
  const [N, C, H, W] = data.shape;
  const { size, count } = options;
  if (!Number.isInteger(size) || size < 1 || size > Math.min(H, W))
    throw new RangeError(`cropDataset: size must be an integer in [1, ${Math.min(H, W)}], got ${size}`);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`cropDataset: count must be a positive integer, got ${count}`);
  const seed = BigInt(options.seed ?? 0);
  const which = philoxIntegers(count, N, seed, 0n);
  const ys = philoxIntegers(count, H - size + 1, seed, 1n);
  const xs = philoxIntegers(count, W - size + 1, seed, 2n);
  const images = new Float32Array(count * C * size * size);
  let k = 0;
  for (let i = 0; i < count; i++)
    for (let c = 0; c < C; c++)
      for (let u = 0; u < size; u++) {
        const row = ((which[i]! * C + c) * H + ys[i]! + u) * W + xs[i]!;
        images.set(data.images.subarray(row, row + size), k);
        k += size;
      }
  const offsets = new Int32Array(2 * count);
  for (let i = 0; i < count; i++) [offsets[2 * i], offsets[2 * i + 1]] = [ys[i]!, xs[i]!];
  return { images, shape: [count, C, size, size], offsets, imageSize: [H, W] };
}

/**
 * A view's own images from a float32/float64 .npy of shape [N, C, H, W] (values as the models take them,
 * e.g. in [-1, 1]): the separate low-resolution, crop or full-resolution sets of a bootstrapping run.
 * Errors name `what` (the CLI flag), the file, and what was expected.
 */
export async function readImageSet(path: string, what: string): Promise<Dataset> {
  if (!path.toLowerCase().endsWith('.npy')) throw new TypeError(`${what} ${path}: expected a .npy file of float images [N, C, H, W]`);
  let a;
  try {
    a = await readNpy(path);
  } catch (e) {
    throw new TypeError(`${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (a.shape.length !== 4 || (a.dtype !== 'float32' && a.dtype !== 'float64') || a.shape.some((v) => v < 1))
    throw new TypeError(`${what} ${path}: expected a float32 or float64 array [N, C, H, W], got ${a.dtype} [${a.shape.join(', ')}]`);
  const images = Float32Array.from(a.data);
  const bad = images.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new RangeError(`${what} ${path}: value ${bad} is ${images[bad]} (training needs finite values)`);
  return { images, shape: a.shape as [number, number, number, number] };
}
