// Measurement data sets: corrupting Fashion-MNIST reproducibly, the safetensors format round trip and
// its validation (truncated, hostile or mismatched files), and a user's own PNG and .npy data.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  corruptDataset,
  encodeNpy,
  encodePng,
  encodeSafetensors,
  loadFashionMnist,
  loadMeasurements,
  parseCorruption,
  readMaskedImageFolder,
  readMeasurementNpy,
  saveMeasurements,
  type MeasurementSet,
} from '../../lib/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'kintsugi-measurements-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fmnist = await loadFashionMnist({ limit: 48 });

/** Bit-identical typed arrays (a byte comparison: toEqual walks large arrays slowly). */
const sameBits = (a: ArrayBufferView, b: ArrayBufferView) =>
  a.byteLength === b.byteLength &&
  Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

function expectSameSet(a: MeasurementSet, b: MeasurementSet) {
  expect(b.kind).toBe(a.kind);
  expect(b.signalShape).toEqual(a.signalShape);
  expect(b.measurementShape).toEqual(a.measurementShape);
  expect(b.count).toBe(a.count);
  expect(b.sigma0).toBe(a.sigma0);
  expect(b.seed).toBe(a.seed);
  const [pa, pb] = [a.params as Record<string, unknown>, b.params as Record<string, unknown>];
  expect(Object.keys(pb).sort()).toEqual(Object.keys(pa).sort());
  for (const key of Object.keys(pa))
    if (ArrayBuffer.isView(pa[key])) expect(sameBits(pa[key] as ArrayBufferView, pb[key] as ArrayBufferView), `params.${key}`).toBe(true);
    else expect(pb[key]).toEqual(pa[key]);
  expect(sameBits(a.measurements, b.measurements), 'measurements').toBe(true);
  expect(b.provenance).toEqual(a.provenance);
}

describe('corruptDataset on the shipped Fashion-MNIST subset', () => {
  const spec = parseCorruption('mask:patch=4,p=0.4');
  const options = { corruption: spec, sigma0: 0.02, seed: 7, device: 'cpu', source: 'fashion-mnist subset' };

  it('patch masks: y = x + noise on observed pixels, 0 on dropped ones; reproducible from the seed', async () => {
    const set = await corruptDataset(fmnist.images, fmnist.shape, options);
    expect(set.count).toBe(48);
    expect(set.measurementShape).toEqual([1, 32, 32]);
    const again = await corruptDataset(fmnist.images, fmnist.shape, options);
    expectSameSet(set, again);
    const other = await corruptDataset(fmnist.images, fmnist.shape, { ...options, seed: 8 });
    expect(sameBits(other.measurements, set.measurements)).toBe(false);
    if (set.params.kind !== 'mask') throw new Error('expected a mask set');
    let ss = 0;
    let n = 0;
    let nonzeroDropped = 0;
    for (let i = 0; i < set.measurements.length; i++) {
      if (set.params.mask[i] === 0) nonzeroDropped += Number(set.measurements[i] !== 0);
      else ((ss += (set.measurements[i]! - fmnist.images[i]!) ** 2), n++);
    }
    expect(nonzeroDropped).toBe(0);
    expect(Math.abs(Math.sqrt(ss / n) / 0.02 - 1)).toBeLessThan(5 * Math.sqrt(1 / (2 * n)));
    const dropped = 1 - n / set.measurements.length;
    expect(Math.abs(dropped - 0.4)).toBeLessThan(5 * Math.sqrt(0.24 / (48 * 64)));
  });

  it.each(['mask:patch=4,p=0.4', 'blockaverage:k=2', 'fourier:center=6,random=4'])('%s: save and load give the same set', async (text) => {
    const set = await corruptDataset(fmnist.images, fmnist.shape, { ...options, corruption: parseCorruption(text) });
    const path = join(dir, `${text.replace(/[:=,]/g, '_')}.safetensors`);
    await saveMeasurements(path, set);
    expectSameSet(set, await loadMeasurements(path));
  });

  it('fourier: real images become [2, H, W] with k-space on the sampled lines only', async () => {
    const set = await corruptDataset(fmnist.images, fmnist.shape, { ...options, corruption: parseCorruption('fourier:center=8,random=8') });
    expect(set.signalShape).toEqual([2, 32, 32]);
    if (set.params.kind !== 'fourier') throw new Error('expected a fourier set');
    expect(set.params.lines.subarray(0, 32).reduce((a, b) => a + b, 0)).toBe(16);
    // The DC coefficient (row 0 is always sampled) is sum(x) / 32 plus noise of sd 0.02.
    const dc = fmnist.images.subarray(0, 1024).reduce((a, b) => a + b, 0) / 32;
    expect(Math.abs(set.measurements[0]! - dc)).toBeLessThan(0.02 * 6);
  });

  it('batch takes rows of measurements and operators onto a device', async () => {
    const set = await corruptDataset(fmnist.images, fmnist.shape, options);
    const { y, op } = set.batch([5, 1]);
    try {
      expect(y.shape).toEqual([2, 1, 32, 32]);
      expect(Array.from(await y.toArray())).toEqual([
        ...set.measurements.subarray(5 * 1024, 6 * 1024),
        ...set.measurements.subarray(1024, 2048),
      ]);
      using s = op.singularValues();
      if (set.params.kind !== 'mask') throw new Error('expected a mask set');
      expect(Array.from(await s.toArray())).toEqual([
        ...set.params.mask.subarray(5 * 1024, 6 * 1024),
        ...set.params.mask.subarray(1024, 2048),
      ]);
    } finally {
      y.dispose();
      op.dispose();
    }
    expect(() => set.batch([48])).toThrow('indices[0]: expected an integer in [0, 48), got 48');
  });

  it('parseCorruption rejects what it does not know, naming it', () => {
    expect(parseCorruption('mask:p=0.2')).toEqual({ kind: 'mask', patch: 1, p: 0.2 });
    expect(() => parseCorruption('blur:k=2')).toThrow('expected the kind mask, blockaverage or fourier, got "blur"');
    expect(() => parseCorruption('mask:patch=4')).toThrow('mask needs p=...');
    expect(() => parseCorruption('blockaverage:k=2,p=1')).toThrow('blockaverage takes k, got "p"');
    expect(() => parseCorruption('mask:p=abc')).toThrow('expected name=number pairs after the colon, got "p=abc"');
  });
});

describe('loadMeasurements refuses bad files with a clear error', () => {
  const y = (n: number, shape: number[]) => ({ shape, data: new Float32Array(n) });
  const meta = {
    format: 'kintsugi-measurements',
    version: '1',
    kind: 'mask',
    signal_shape: '[1,4,4]',
    sigma0: '0.1',
    seed: '3',
    provenance: '{}',
  };
  const write = (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  const good = () =>
    encodeSafetensors({ measurements: y(32, [2, 1, 4, 4]), mask: { shape: [2, 1, 4, 4], data: new Float32Array(32).fill(1) } }, meta);

  it('accepts the well-formed file these cases start from', async () => {
    const set = await loadMeasurements(write('good.safetensors', good()));
    expect(set.count).toBe(2);
  });
  it('truncated', async () => {
    const path = write('cut.safetensors', good().subarray(0, 100));
    await expect(loadMeasurements(path)).rejects.toThrow(/cut\.safetensors: .*(truncated|exceeds|end beyond)/);
  });
  it.each([
    ['not a data set', { ...meta, format: 'other' }, /not a measurement data set: metadata "format" is "other"/],
    ['unknown operator', { ...meta, kind: 'blur' }, /unknown operator kind "blur", expected "mask", "blockaverage" or "fourier"/],
    [
      'a bad signal shape',
      { ...meta, signal_shape: '[1,4]' },
      /metadata "signal_shape" must be \[C, H, W\] of positive integers, got \[1,4\]/,
    ],
    ['a negative sigma0', { ...meta, sigma0: '-1' }, /metadata "sigma0" must be a number >= 0, got "-1"/],
    ['another version', { ...meta, version: '9' }, /unsupported version "9", expected "1"/],
  ])('%s', async (name, m, error) => {
    const path = write(
      `${name}.safetensors`,
      encodeSafetensors({ measurements: y(32, [2, 1, 4, 4]), mask: { shape: [2, 1, 4, 4], data: new Float32Array(32).fill(1) } }, m),
    );
    await expect(loadMeasurements(path)).rejects.toThrow(error);
  });
  it('shape mismatches, missing and unexpected tensors, non-binary masks', async () => {
    const cases: [Record<string, { shape: number[]; data: Float32Array }>, RegExp][] = [
      [
        { measurements: y(48, [3, 1, 4, 4]), mask: { shape: [2, 1, 4, 4], data: new Float32Array(32).fill(1) } },
        /tensor "measurements" must be \[2,1,4,4\], got \[3,1,4,4\]/,
      ],
      [
        { measurements: y(32, [2, 1, 4, 4]), mask: { shape: [2, 1, 4, 2], data: new Float32Array(16).fill(1) } },
        /tensor "mask" must be \[N, 1 or 1, 4, 4\]/,
      ],
      [{ measurements: y(32, [2, 1, 4, 4]) }, /missing tensor "mask"/],
      [
        { measurements: y(32, [2, 1, 4, 4]), mask: { shape: [2, 1, 4, 4], data: new Float32Array(32).fill(1) }, extra: y(1, [1]) },
        /unexpected tensor "extra" for kind "mask"/,
      ],
      [
        { measurements: y(32, [2, 1, 4, 4]), mask: { shape: [2, 1, 4, 4], data: new Float32Array(32).fill(0.5) } },
        /tensor "mask" must hold 0 or 1, got 0.5 at index 0/,
      ],
    ];
    for (const [i, [tensors, error]] of cases.entries())
      await expect(loadMeasurements(write(`shape${i}.safetensors`, encodeSafetensors(tensors, meta)))).rejects.toThrow(error);
    const nan = y(32, [2, 1, 4, 4]);
    nan.data[3] = NaN;
    await expect(
      loadMeasurements(
        write(
          'nan.safetensors',
          encodeSafetensors({ measurements: nan, mask: { shape: [2, 1, 4, 4], data: new Float32Array(32).fill(1) } }, meta),
        ),
      ),
    ).rejects.toThrow(/tensor "measurements" holds a non-finite value \(NaN\) at index 3/);
  });
});

describe("a user's own corrupted data", () => {
  const grey = (w: number, h: number, f: (i: number) => number) =>
    encodePng({ width: w, height: h, channels: 1, data: Uint8Array.from({ length: w * h }, (_, i) => f(i)) });

  it('PNG images with a mask per image', async () => {
    const d = mkdtempSync(join(dir, 'png-'));
    writeFileSync(
      join(d, 'a.png'),
      grey(4, 2, (i) => 10 * i),
    );
    writeFileSync(
      join(d, 'a.mask.png'),
      grey(4, 2, (i) => (i % 2 ? 0 : 255)),
    );
    writeFileSync(
      join(d, 'b.png'),
      grey(4, 2, () => 255),
    );
    writeFileSync(
      join(d, 'b.mask.png'),
      grey(4, 2, (i) => (i < 4 ? 255 : 0)),
    );
    const set = await readMaskedImageFolder(d, { channels: 1, sigma0: 0.01 });
    expect(set.count).toBe(2);
    expect(set.signalShape).toEqual([1, 2, 4]);
    expect(set.seed).toBe(null);
    if (set.params.kind !== 'mask') throw new Error('expected a mask set');
    expect(Array.from(set.params.mask)).toEqual([1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0]);
    expect(set.measurements[2]).toBeCloseTo((2 * 20 - 255) / 255, 6);
    expect(set.measurements[1] === 0 && set.measurements[8] === 1 && set.measurements[12] === 0).toBe(true);
    // Round trip through the data-set file.
    await saveMeasurements(join(d, 'set.safetensors'), set);
    expectSameSet(set, await loadMeasurements(join(d, 'set.safetensors')));
  });

  it('PNG images with one mask for all; errors for a missing mask and a size mismatch', async () => {
    const d = mkdtempSync(join(dir, 'png1-'));
    writeFileSync(
      join(d, 'a.png'),
      grey(3, 3, () => 200),
    );
    writeFileSync(
      join(d, 'b.png'),
      grey(3, 3, () => 100),
    );
    const maskPath = join(dir, 'one.mask.png');
    writeFileSync(
      maskPath,
      grey(3, 3, (i) => (i === 4 ? 0 : 255)),
    );
    const set = await readMaskedImageFolder(d, { channels: 3, sigma0: 0, mask: maskPath });
    expect(set.measurementShape).toEqual([3, 3, 3]);
    expect(set.measurements[4] === 0 && set.measurements[27 + 9 + 4] === 0).toBe(true);
    await expect(readMaskedImageFolder(d, { channels: 1, sigma0: 0 })).rejects.toThrow(
      '2 image(s) have no mask, e.g. a.png needs a.mask.png',
    );
    writeFileSync(
      join(d, 'a.mask.png'),
      grey(3, 3, () => 255),
    );
    writeFileSync(
      join(d, 'b.mask.png'),
      grey(2, 3, () => 255),
    );
    await expect(readMaskedImageFolder(d, { channels: 1, sigma0: 0 })).rejects.toThrow(
      /b\.mask\.png: mask is 2x3, expected 3x3 \(the size of b\.png\)/,
    );
  });

  it('.npy measurements with a mask per sample or one for all, and k-space with a line mask', async () => {
    const yPath = join(dir, 'y.npy');
    writeFileSync(yPath, encodeNpy({ shape: [2, 1, 2, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8) }));
    const mPath = join(dir, 'm.npy');
    writeFileSync(mPath, encodeNpy({ shape: [2, 1, 2, 2], data: Uint8Array.of(1, 0, 1, 1, 0, 1, 1, 1) }));
    const set = await readMeasurementNpy(yPath, mPath, { sigma0: 0.05 });
    expect(Array.from(set.measurements)).toEqual([1, 0, 3, 4, 0, 6, 7, 8]);
    const onePath = join(dir, 'one.npy');
    writeFileSync(onePath, encodeNpy({ shape: [2, 2], data: Float64Array.of(0, 1, 1, 1) }));
    expect(Array.from((await readMeasurementNpy(yPath, onePath, { sigma0: 0 })).measurements)).toEqual([0, 2, 3, 4, 0, 6, 7, 8]);
    writeFileSync(onePath, encodeNpy({ shape: [3, 2], data: Float64Array.of(0, 1, 1, 1, 1, 1) }));
    await expect(readMeasurementNpy(yPath, onePath, { sigma0: 0 })).rejects.toThrow(
      /must be \[2, 1 or 1, 2, 2\], \[1 or 1, 2, 2\] or \[2, 2\], got \[3,2\]/,
    );
    writeFileSync(onePath, encodeNpy({ shape: [2, 2], data: Float64Array.of(0, 1, 2, 1) }));
    await expect(readMeasurementNpy(yPath, onePath, { sigma0: 0 })).rejects.toThrow('the mask must hold 0 or 1, got 2 at index 2');

    const kPath = join(dir, 'k.npy');
    writeFileSync(kPath, encodeNpy({ shape: [1, 2, 4, 2], data: Float32Array.from({ length: 16 }, (_, i) => i + 1) }));
    const lPath = join(dir, 'l.npy');
    writeFileSync(lPath, encodeNpy({ shape: [4], data: Uint8Array.of(1, 0, 0, 1) }));
    const k = await readMeasurementNpy(kPath, lPath, { kind: 'fourier', sigma0: 0 });
    expect(k.kind).toBe('fourier');
    expect(Array.from(k.measurements)).toEqual([1, 2, 0, 0, 0, 0, 7, 8, 9, 10, 0, 0, 0, 0, 15, 16]);
    await expect(readMeasurementNpy(yPath, lPath, { kind: 'fourier', sigma0: 0 })).rejects.toThrow(
      /k-space measurements must be \[N, 2, H, W\]/,
    );
    expect(readFileSync(kPath).length).toBeGreaterThan(0);
  });
});
