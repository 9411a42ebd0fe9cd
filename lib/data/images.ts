// A folder of PNG files as one float32 batch [N, C, H, W] in [-1, 1], the layout and range the models
// train on. Files are taken in name order (by code point, so the order is the same on every machine);
// colour is converted to the requested channel count and alpha is dropped (training images are opaque).
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readPng, type PngImage } from './png.ts';

export interface ImageFolderOptions {
  /** 1: greyscale (RGB -> luma, ITU-R BT.601: round(0.299 R + 0.587 G + 0.114 B)); 3: RGB (grey is replicated). */
  channels: 1 | 3;
  /** The width and height every image must have (square images); default: whatever the first file has. */
  size?: number;
}

export interface ImageFolder {
  /** [N, C, H, W], 0 -> -1 and 255 -> 1. */
  data: Float32Array;
  shape: [number, number, number, number];
  /** The files read, in order: data's image i came from files[i]. */
  files: string[];
}

/** 8-bit samples of `image` with `channels` channels: grey -> RGB replicates, RGB -> grey by BT.601 luma, alpha dropped. */
function convert(image: PngImage, channels: 1 | 3): Uint8Array {
  const { width, height, channels: c, data } = image;
  const n = width * height;
  if (c === channels) return data;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    if (c <= 2) {
      const g = data[i * c]!;
      if (channels === 1) out[i] = g;
      else out.fill(g, 3 * i, 3 * i + 3);
    } else {
      const [r, g, b] = [data[i * c]!, data[i * c + 1]!, data[i * c + 2]!];
      if (channels === 1) out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      else out.set([r, g, b], 3 * i);
    }
  }
  return out;
}

/** Reads every *.png in `dir` (not subfolders), in name order. Every image must have the same size. */
export async function readImageFolder(dir: string, options: ImageFolderOptions): Promise<ImageFolder> {
  if (typeof dir !== 'string' || dir === '')
    throw new TypeError(`dir: expected a directory name, got ${JSON.stringify(dir) ?? typeof dir}`);
  const channels = options?.channels;
  if (channels !== 1 && channels !== 3) throw new TypeError(`options.channels: expected 1 or 3, got ${JSON.stringify(channels)}`);
  const size = options.size;
  if (size !== undefined && (!Number.isSafeInteger(size) || size < 1))
    throw new TypeError(`options.size: expected a positive integer, got ${JSON.stringify(size)}`);

  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new Error(`${dir}: cannot list the image folder: ${(e as Error).message}`, { cause: e });
  }
  const files: string[] = [];
  for (const entry of entries) {
    if (!/\.png$/i.test(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isFile() || (entry.isSymbolicLink() && (await stat(path)).isFile())) files.push(entry.name);
  }
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (files.length === 0) throw new Error(`${dir}: no .png files in the folder`);

  let data: Float32Array | undefined;
  let width = size ?? 0;
  let height = size ?? 0;
  const paths = files.map((f) => join(dir, f));
  for (const [n, path] of paths.entries()) {
    const image = await readPng(path);
    if (data === undefined && size === undefined) [width, height] = [image.width, image.height];
    if (image.width !== width || image.height !== height) {
      const why = size !== undefined ? `options.size is ${size}` : `${files[0]} (the first file) is ${width}x${height}`;
      throw new Error(
        `${path}: image is ${image.width}x${image.height}, expected ${width}x${height} (${why}); every image in ${dir} must have the same size`,
      );
    }
    data ??= new Float32Array(paths.length * channels * width * height);
    const pixels = convert(image, channels);
    const hw = width * height;
    const base = n * channels * hw;
    for (let k = 0; k < channels; k++) for (let i = 0; i < hw; i++) data[base + k * hw + i] = (2 * pixels[i * channels + k]! - 255) / 255;
  }
  return { data: data!, shape: [paths.length, channels, height, width], files: paths };
}

/** 8-bit samples of `image` with 1 or 3 channels, converted as readImageFolder does (for lib/data/measurements.ts). */
export { convert as convertChannels };
