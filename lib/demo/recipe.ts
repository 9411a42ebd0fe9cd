// The demo's recipe, shared by `kintsugi demo` and scripts/train-demo-prior.ts (which trains the prior
// the demo starts from): which images, how they are corrupted, at which resolution, and which model.
// Everything the model ever sees is the corrupted measurement set: the clean images are only loaded to
// corrupt them (and, in the demo, for nothing else).
import { corruptDataset, type MeasurementSet } from '../corruption/dataset.ts';
import { loadFashionMnist } from '../data/fashion-mnist.ts';
import type { UNetConfig } from '../unet.ts';

/**
 * 16x16 images: a quarter of the pixels of 32x32, so two CPU cores train four times as many images a
 * minute: the resolution of `--no-prior` on the CPU and of the demo's first prior. The garments stay
 * recognisable, but the shipped classifier, on real images averaged down to 16x16 and shown at 32x32, is
 * confident (>= 0.8) on only 84 % of them, against 92 % at 32x32: too little headroom for the demo's 75 %
 * bar, which is why the shipped prior is a 32x32 one (DEMO_UNET_32).
 */
export const DEMO_RESOLUTION = 16;

export const DEMO_UNET: UNetConfig = {
  inChannels: 1,
  outChannels: 1,
  channels: 32,
  mult: [1, 2],
  resBlocks: 1,
  attnResolutions: [8],
  resolution: DEMO_RESOLUTION,
};

/**
 * The demo's network at 32x32, the shipped prior's (`--resolution 32` of scripts/train-demo-prior.ts): the
 * `small32` preset's shape, one more level than DEMO_UNET so that the deepest level is 8x8 again. At 32x32
 * real images reach 92 % confident with the shipped classifier, against 84 % at 16x16: the headroom the
 * quality bar needs (docs/demo.md).
 */
export const DEMO_UNET_32: UNetConfig = {
  inChannels: 1,
  outChannels: 1,
  channels: 32,
  mult: [1, 2, 2],
  resBlocks: 1,
  attnResolutions: [8],
  resolution: 32,
};

/** The resolutions the demo runs at: 16 (its CPU default) and 32 (the images as shipped). */
export type DemoResolution = 16 | 32;

/** The demo's network at resolution r. */
export function demoUNet(r: DemoResolution): UNetConfig {
  return r === 32 ? DEMO_UNET_32 : DEMO_UNET;
}

/** `r` if it is a resolution the demo runs at; else an error naming `what` (a flag or a file). */
export function demoResolution(r: number, what: string): DemoResolution {
  if (r === 16 || r === 32) return r;
  throw new RangeError(`${what}: the demo runs at 16x16 or 32x32, got ${r}`);
}

/** Each pixel is missing with probability 0.4 and every observed one carries Gaussian noise of 0.05. */
export const DEMO_CORRUPTION = { spec: 'mask:p=0.4', p: 0.4, sigma0: 0.05 } as const;

/** 2x2 block averages of [N, 1, 32, 32] images: [N, 1, 16, 16]. */
export function halve(images: Float32Array, n: number, size = 32): Float32Array {
  const h = size / 2;
  const out = new Float32Array(n * h * h);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < h; x++) {
        const at = i * size * size + 2 * y * size + 2 * x;
        out[i * h * h + y * h + x] = (images[at]! + images[at + 1]! + images[at + size]! + images[at + size + 1]!) / 4;
      }
  return out;
}

/** Nearest-neighbour 2x upsampling of [N, 1, h, h] images (for the picture and the 32x32 classifier). */
export function double(images: Float32Array, n: number, h: number): Float32Array {
  const s = 2 * h;
  const out = new Float32Array(n * s * s);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) out[i * s * s + y * s + x] = images[i * h * h + (y >> 1) * h + (x >> 1)]!;
  return out;
}

/** Shipped [N, 1, 32, 32] images at the demo's resolution r: averaged down to 16x16, or as they are. */
export function atResolution(images: Float32Array, n: number, r: DemoResolution): Float32Array {
  return r === 16 ? halve(images, n) : images;
}

/** [N, 1, r, r] demo images at the classifier's and the picture's 32x32 (doubled from 16x16). */
export function atClassifierSize(images: Float32Array, n: number, r: DemoResolution): Float32Array {
  return r === 16 ? double(images, n, r) : images;
}

/**
 * The shipped Fashion-MNIST subset (2,000 training images) at resolution r (averaged down to 16x16 by
 * default) and corrupted by DEMO_CORRUPTION with `seed`: the only data the demo and its prior learn from.
 */
export async function demoMeasurements(seed: number, limit?: number, r: DemoResolution = DEMO_RESOLUTION): Promise<MeasurementSet> {
  const data = await loadFashionMnist({ source: 'subset', limit });
  const n = data.shape[0];
  return corruptDataset(atResolution(data.images, n, r), [n, 1, r, r], {
    corruption: { kind: 'mask', p: DEMO_CORRUPTION.p, patch: 1 },
    sigma0: DEMO_CORRUPTION.sigma0,
    seed,
    device: 'cpu',
    source: r === 16 ? `${data.file} averaged to 16x16` : data.file,
  });
}
