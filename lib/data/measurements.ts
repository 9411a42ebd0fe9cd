// A user's own corrupted data as a MeasurementSet (lib/corruption/dataset.ts), ready for GSURE:
//  - a folder of PNG images with masks: `foo.png` is a measurement and `foo.mask.png` its mask
//    (white = observed: a mask pixel is observed where its first channel is >= 128), or one mask
//    PNG for every image (options.mask). Pixels map to [-1, 1] as in readImageFolder; unobserved
//    pixels are set to 0 whatever the image holds there.
//  - .npy arrays: measurements [N, C, H, W] (float32 or float64) with a mask of 0/1 values, per sample
//    [N, 1 or C, H, W] or one for all [1 or C, H, W]; for k-space data (kind "fourier") the measurements
//    are [N, 2, H, W] (real, imaginary; unshifted) and the mask a line mask [N, H] or [H].
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeasurementSet } from '../corruption/dataset.ts';
import { convertChannels } from './images.ts';
import { readNpy } from './npy.ts';
import { readPng } from './png.ts';

export interface MaskedFolderOptions {
  /** 1 (greyscale) or 3 (RGB), converted as readImageFolder does. */
  channels: 1 | 3;
  /** The noise level of the measurements (known to the user), >= 0. */
  sigma0: number;
  /** One mask PNG for every image; default: `<name>.mask.png` beside each `<name>.png`. */
  mask?: string;
}

const MASK_SUFFIX = /\.mask\.png$/i;

/** Observed (1) where the first channel is >= 128. */
function maskBits(image: { data: Uint8Array; channels: number; width: number; height: number }): Uint8Array {
  const n = image.width * image.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = image.data[i * image.channels]! >= 128 ? 1 : 0;
  return out;
}

export async function readMaskedImageFolder(dir: string, options: MaskedFolderOptions): Promise<MeasurementSet> {
  if (typeof dir !== 'string' || dir === '')
    throw new TypeError(`dir: expected a directory name, got ${JSON.stringify(dir) ?? typeof dir}`);
  const channels = options?.channels;
  if (channels !== 1 && channels !== 3) throw new TypeError(`options.channels: expected 1 or 3, got ${JSON.stringify(channels)}`);
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new Error(`${dir}: cannot list the image folder: ${(e as Error).message}`, { cause: e });
  }
  const names = new Set<string>();
  for (const e of entries)
    if (/\.png$/i.test(e.name) && (e.isFile() || (e.isSymbolicLink() && (await stat(join(dir, e.name))).isFile()))) names.add(e.name);
  const images = [...names].filter((n) => !MASK_SUFFIX.test(n)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (images.length === 0) throw new Error(`${dir}: no .png images in the folder (files ending in .mask.png are masks)`);

  let shared: Uint8Array | undefined;
  if (options.mask !== undefined) shared = maskBits(await readPng(options.mask));
  else {
    const missing = images.filter((n) => !names.has(n.replace(/\.png$/i, '.mask.png')));
    if (missing.length > 0)
      throw new Error(
        `${dir}: ${missing.length} image(s) have no mask, e.g. ${missing[0]} needs ${missing[0]!.replace(/\.png$/i, '.mask.png')} (or pass options.mask, one mask for every image)`,
      );
  }
  let width = 0;
  let height = 0;
  let measurements: Float32Array | undefined;
  let masks: Uint8Array | undefined;
  for (const [i, name] of images.entries()) {
    const path = join(dir, name);
    const image = await readPng(path);
    if (i === 0) {
      [width, height] = [image.width, image.height];
      measurements = new Float32Array(images.length * channels * width * height);
      masks = new Uint8Array(images.length * width * height);
    }
    if (image.width !== width || image.height !== height)
      throw new Error(
        `${path}: image is ${image.width}x${image.height}, expected ${width}x${height} (the size of ${images[0]}); every image must have the same size`,
      );
    const maskPath = options.mask ?? join(dir, name.replace(/\.png$/i, '.mask.png'));
    let bits = shared;
    if (!bits) {
      const m = await readPng(maskPath);
      if (m.width !== width || m.height !== height)
        throw new Error(`${maskPath}: mask is ${m.width}x${m.height}, expected ${width}x${height} (the size of ${name})`);
      bits = maskBits(m);
    } else if (bits.length !== width * height) {
      throw new Error(`${maskPath}: the mask has ${bits.length} pixels, expected ${width}x${height} (the size of ${name})`);
    }
    masks!.set(bits, i * width * height);
    const pixels = convertChannels(image, channels);
    const hw = width * height;
    for (let c = 0; c < channels; c++)
      for (let j = 0; j < hw; j++) measurements![(i * channels + c) * hw + j] = bits[j] ? (2 * pixels[j * channels + c]! - 255) / 255 : 0;
  }
  return new MeasurementSet({
    signalShape: [channels, height, width],
    measurements: measurements!,
    params: { kind: 'mask', mask: masks!, maskChannels: 1 },
    sigma0: options.sigma0,
    provenance: { source: dir, files: images, mask: options.mask ?? 'per image' },
  });
}

export interface NpyMeasurementOptions {
  /** "mask" (default): pixel masks; "fourier": k-space with a line mask. */
  kind?: 'mask' | 'fourier';
  sigma0: number;
}

export async function readMeasurementNpy(
  measurementsPath: string,
  maskPath: string,
  options: NpyMeasurementOptions,
): Promise<MeasurementSet> {
  const kind = options?.kind ?? 'mask';
  if (kind !== 'mask' && kind !== 'fourier') throw new TypeError(`options.kind: expected "mask" or "fourier", got ${JSON.stringify(kind)}`);
  const y = await readNpy(measurementsPath);
  if (y.dtype === 'uint8')
    throw new Error(`${measurementsPath}: measurements must be float32 or float64, got uint8 (convert images with readMaskedImageFolder)`);
  if (y.shape.length !== 4) throw new Error(`${measurementsPath}: measurements must be [N, C, H, W], got shape ${JSON.stringify(y.shape)}`);
  const [N, C, H, W] = y.shape as [number, number, number, number];
  if (!(N >= 1 && C >= 1 && H >= 1 && W >= 1))
    throw new Error(
      `${measurementsPath}: measurements must be [N, C, H, W] with every size at least 1, got shape ${JSON.stringify(y.shape)}`,
    );
  if (kind === 'fourier' && C !== 2)
    throw new Error(`${measurementsPath}: k-space measurements must be [N, 2, H, W] (real, imaginary), got ${JSON.stringify(y.shape)}`);
  const m = await readNpy(maskPath);
  const bits = new Uint8Array(m.data.length);
  for (let i = 0; i < bits.length; i++) {
    const v = m.data[i]!;
    if (v !== 0 && v !== 1) throw new Error(`${maskPath}: the mask must hold 0 or 1, got ${v} at index ${i}`);
    bits[i] = v;
  }
  // One mask for every sample is repeated N times.
  const repeat = (per: number) => {
    const out = new Uint8Array(N * per);
    for (let i = 0; i < N; i++) out.set(bits, i * per);
    return out;
  };
  const data = Float32Array.from(y.data);
  const nonFinite = data.findIndex((v) => !Number.isFinite(v));
  if (nonFinite >= 0) throw new Error(`${measurementsPath}: a non-finite value (${data[nonFinite]}) at index ${nonFinite}`);
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  const provenance = { source: measurementsPath, mask: maskPath };
  if (kind === 'fourier') {
    let lines: Uint8Array;
    if (same(m.shape, [N, H])) lines = bits;
    else if (same(m.shape, [H])) lines = repeat(H);
    else
      throw new Error(
        `${maskPath}: a line mask for measurements ${JSON.stringify(y.shape)} must be [${N}, ${H}] or [${H}], got ${JSON.stringify(m.shape)}`,
      );
    for (let i = 0; i < N; i++)
      for (let r = 0; r < H; r++)
        if (!lines[i * H + r]) for (let c = 0; c < 2; c++) data.fill(0, ((i * 2 + c) * H + r) * W, ((i * 2 + c) * H + r + 1) * W);
    return new MeasurementSet({
      signalShape: [2, H, W],
      measurements: data,
      params: { kind: 'fourier', lines },
      sigma0: options.sigma0,
      provenance,
    });
  }
  let mask: Uint8Array;
  let mc: number;
  if (m.shape.length === 4 && m.shape[0] === N && (m.shape[1] === 1 || m.shape[1] === C) && m.shape[2] === H && m.shape[3] === W)
    [mask, mc] = [bits, m.shape[1]!];
  else if (m.shape.length === 3 && (m.shape[0] === 1 || m.shape[0] === C) && m.shape[1] === H && m.shape[2] === W)
    [mask, mc] = [repeat(bits.length), m.shape[0]!];
  else if (same(m.shape, [H, W])) [mask, mc] = [repeat(H * W), 1];
  else
    throw new Error(
      `${maskPath}: a mask for measurements ${JSON.stringify(y.shape)} must be [${N}, 1 or ${C}, ${H}, ${W}], [1 or ${C}, ${H}, ${W}] or [${H}, ${W}], got ${JSON.stringify(m.shape)}`,
    );
  for (let i = 0; i < N; i++)
    for (let c = 0; c < C; c++)
      for (let j = 0; j < H * W; j++) if (!mask[(i * mc + (mc === 1 ? 0 : c)) * H * W + j]) data[(i * C + c) * H * W + j] = 0;
  return new MeasurementSet({
    signalShape: [C, H, W],
    measurements: data,
    params: { kind: 'mask', mask, maskChannels: mc },
    sigma0: options.sigma0,
    provenance,
  });
}
