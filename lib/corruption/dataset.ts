// Measurement data sets: what GSURE training reads. Each sample is a measurement y = H_i x_i + σ0 z
// with its operator H_i (a mask, a k-space line mask, or block averaging, shared by every sample).
// Made by corrupting a clean data set reproducibly from a seed (corruptDataset), saved to and loaded
// from one safetensors file (saveMeasurements / loadMeasurements; the format is in docs/corruption.md),
// or read from a user's own corrupted images (lib/data/measurements.ts).
import { readSafetensors, writeSafetensors, type SafetensorsInput } from '../safetensors.ts';
import { resolveDevice } from '../device.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { BlockAverageOperator } from './block-average.ts';
import { FourierOperator, randomLineMask } from './fourier.ts';
import { MaskOperator, randomPatchMask } from './mask.ts';
import { measure } from './measure.ts';
import { checkIndices, checkShape, toSeed, type Degradation, type DegradationKind } from './operator.ts';

/** How to corrupt: random patch (or pixel, patch 1) masks, block averaging, or random k-space lines. */
export type CorruptionSpec =
  | { kind: 'mask'; patch?: number; p: number }
  | { kind: 'blockaverage'; k: number }
  | { kind: 'fourier'; centerLines: number; randomLines: number };

/** The operators' per-sample parameters, as stored. */
export type OperatorParams =
  | { kind: 'mask'; mask: Uint8Array; maskChannels: number }
  | { kind: 'blockaverage'; k: number }
  | { kind: 'fourier'; lines: Uint8Array };

export const MEASUREMENTS_FORMAT = 'kintsugi-measurements';
export const MEASUREMENTS_VERSION = '1';

/** A set of measurements with their operators, held on the host; batches go to a device on demand. */
export class MeasurementSet {
  readonly count: number;
  readonly signalShape: readonly number[];
  readonly measurementShape: readonly number[];
  /** [count, ...measurementShape]. */
  readonly measurements: Float32Array;
  readonly params: OperatorParams;
  readonly sigma0: number;
  /** The seed it was corrupted with (decimal), or null for a user's own data. */
  readonly seed: string | null;
  /** How it was made (the CorruptionSpec, or where the files came from): recorded, not interpreted. */
  readonly provenance: Record<string, unknown>;

  constructor(fields: {
    signalShape: readonly number[];
    measurements: Float32Array;
    params: OperatorParams;
    sigma0: number;
    seed?: string | null;
    provenance?: Record<string, unknown>;
  }) {
    this.signalShape = Object.freeze(checkShape(fields.signalShape, 'signalShape'));
    if (!(typeof fields.sigma0 === 'number' && fields.sigma0 >= 0 && Number.isFinite(fields.sigma0)))
      throw new RangeError(`sigma0: expected a finite noise level >= 0, got ${JSON.stringify(fields.sigma0)}`);
    this.sigma0 = fields.sigma0;
    this.params = fields.params;
    // The measurement shape and sample count follow from the operator's parameters.
    const per = this.#perSample();
    this.measurementShape = Object.freeze(per.measurementShape);
    const size = this.measurementShape.reduce((a, b) => a * b, 1);
    const got = fields.measurements instanceof Float32Array ? fields.measurements.length : 0;
    // Block averaging carries no per-sample parameters: there the measurements give the count.
    this.count = per.count ?? Math.max(1, Math.floor(got / size));
    const want = this.count * size;
    if (!(fields.measurements instanceof Float32Array) || fields.measurements.length !== want)
      throw new RangeError(
        `measurements: expected ${want} values (${this.count} samples of ${JSON.stringify(this.measurementShape)}), got ${fields.measurements instanceof Float32Array ? fields.measurements.length : typeof fields.measurements}`,
      );
    this.measurements = fields.measurements;
    this.seed = fields.seed ?? null;
    this.provenance = fields.provenance ?? {};
  }

  get kind(): DegradationKind {
    return this.params.kind;
  }

  #perSample(): { count: number | null; measurementShape: number[] } {
    const [C, H, W] = this.signalShape as [number, number, number];
    const p = this.params;
    if (p.kind === 'mask') {
      const per = p.maskChannels * H * W;
      if (!(p.maskChannels === 1 || p.maskChannels === C) || p.mask.length === 0 || p.mask.length % per)
        throw new RangeError(
          `mask: expected [N, 1 or ${C}, ${H}, ${W}] values for signals ${JSON.stringify(this.signalShape)}, got ${p.mask.length} with ${p.maskChannels} channel(s)`,
        );
      const bad = p.mask.findIndex((v) => v > 1);
      if (bad >= 0) throw new RangeError(`mask: values must be 0 (dropped) or 1 (observed), got ${p.mask[bad]} at index ${bad}`);
      return { count: p.mask.length / per, measurementShape: [C, H, W] };
    }
    if (p.kind === 'fourier') {
      if (p.lines.length === 0 || p.lines.length % H)
        throw new RangeError(`lines: expected N * ${H} values (one per k-space row), got ${p.lines.length}`);
      if (C !== 2)
        throw new RangeError(`signalShape: fourier signals are [2, H, W] (real, imaginary), got ${JSON.stringify(this.signalShape)}`);
      const bad = p.lines.findIndex((v) => v > 1);
      if (bad >= 0) throw new RangeError(`lines: values must be 0 or 1, got ${p.lines[bad]} at index ${bad}`);
      return { count: p.lines.length / H, measurementShape: [C, H, W] };
    }
    if (p.kind === 'blockaverage') {
      if (!Number.isSafeInteger(p.k) || p.k < 1 || H % p.k || W % p.k)
        throw new RangeError(`k: expected a positive integer dividing ${H} and ${W}, got ${JSON.stringify(p.k)}`);
      return { count: null, measurementShape: [C, H / p.k, W / p.k] };
    }
    throw new RangeError(`params.kind: expected "mask", "blockaverage" or "fourier", got ${JSON.stringify((p as { kind: unknown }).kind)}`);
  }

  /** The operator of rows `indices` (default: every row) on `device`. */
  operator(options: { indices?: readonly number[]; device?: string } = {}): Degradation {
    const rows = options.indices === undefined ? undefined : checkIndices(options.indices, this.count);
    const device = resolveDevice(options.device);
    const n = rows?.length ?? this.count;
    const [, H, W] = this.signalShape as [number, number, number];
    const p = this.params;
    const take = (data: Uint8Array, per: number) => {
      if (!rows) return data;
      const out = new Uint8Array(rows.length * per);
      rows.forEach((r, j) => out.set(data.subarray(r * per, (r + 1) * per), j * per));
      return out;
    };
    if (p.kind === 'mask')
      return new MaskOperator(take(p.mask, p.maskChannels * H * W), [n, p.maskChannels, H, W], this.signalShape, { device });
    if (p.kind === 'fourier') return new FourierOperator(take(p.lines, H), this.signalShape, { device });
    return new BlockAverageOperator(n, this.signalShape, p.k, { device });
  }

  /** Measurements and operator of rows `indices`, on `device`: a training batch. */
  batch(indices: readonly number[], options: { device?: string } = {}): { y: Tensor; op: Degradation } {
    const rows = checkIndices(indices, this.count);
    const per = this.measurements.length / this.count;
    const y = new Float32Array(rows.length * per);
    rows.forEach((r, j) => y.set(this.measurements.subarray(r * per, (r + 1) * per), j * per));
    const op = this.operator({ indices: rows, device: options.device });
    return { y: tensor(y, [rows.length, ...this.measurementShape], { device: op.device }), op };
  }
}

export interface CorruptOptions {
  corruption: CorruptionSpec;
  /** Measurement noise level, >= 0. */
  sigma0: number;
  /** Seeds the masks (or lines) and the noise, on separate Philox streams. */
  seed: bigint | number;
  /** Where the measurements are computed; default: defaultDevice(). */
  device?: string;
  /** Recorded in the saved file (e.g. "fashion-mnist subset"). */
  source?: string;
}

/**
 * Corrupts clean images [N, C, H, W] reproducibly: operator parameters drawn from `seed` (sample i's
 * depend on (seed, i) only), then y = H x + sigma0 z with z from `seed` too. For "fourier", real images
 * (C = 1) become complex ones with a zero imaginary channel; C = 2 is taken as complex already.
 */
export async function corruptDataset(images: Float32Array, shape: readonly number[], options: CorruptOptions): Promise<MeasurementSet> {
  const [N, C, H, W] = checkShape(shape, 'shape', 4) as [number, number, number, number];
  if (!(images instanceof Float32Array) || images.length !== N * C * H * W)
    throw new RangeError(
      `images: expected a Float32Array of ${N * C * H * W} values for shape ${JSON.stringify(shape)}, got ${images instanceof Float32Array ? images.length : typeof images}`,
    );
  const spec = options?.corruption;
  const seed = toSeed(options.seed, 'options.seed');
  let params: OperatorParams;
  let signal = images;
  let signalShape = [C, H, W];
  if (spec?.kind === 'mask') {
    params = { kind: 'mask', mask: randomPatchMask(N, [H, W], { patch: spec.patch ?? 1, p: spec.p, seed }), maskChannels: 1 };
  } else if (spec?.kind === 'blockaverage') {
    params = { kind: 'blockaverage', k: spec.k };
  } else if (spec?.kind === 'fourier') {
    if (C !== 1 && C !== 2) throw new RangeError(`shape: fourier corruption takes real (C = 1) or complex (C = 2) images, got C = ${C}`);
    if (C === 1) {
      signal = new Float32Array(N * 2 * H * W);
      for (let i = 0; i < N; i++) signal.set(images.subarray(i * H * W, (i + 1) * H * W), i * 2 * H * W);
      signalShape = [2, H, W];
    }
    params = { kind: 'fourier', lines: randomLineMask(N, H, { centerLines: spec.centerLines, randomLines: spec.randomLines, seed }) };
  } else {
    throw new TypeError(
      `options.corruption.kind: expected "mask", "blockaverage" or "fourier", got ${JSON.stringify((spec as { kind?: unknown } | undefined)?.kind)}`,
    );
  }
  const device = resolveDevice(options.device);
  const op: Degradation =
    params.kind === 'mask'
      ? new MaskOperator(params.mask, [N, 1, H, W], signalShape, { device })
      : params.kind === 'fourier'
        ? new FourierOperator(params.lines, signalShape, { device })
        : new BlockAverageOperator(N, signalShape, params.k, { device });
  try {
    using x = tensor(signal, [N, ...signalShape], { device: op.device });
    using y = measure(op, x, { sigma0: options.sigma0, seed });
    const provenance: Record<string, unknown> = {
      corruption: spec,
      ...(options.source === undefined ? {} : { source: String(options.source) }),
    };
    return new MeasurementSet({
      signalShape,
      measurements: await y.toArray(),
      params,
      sigma0: options.sigma0,
      seed: seed.toString(),
      provenance,
    });
  } finally {
    op.dispose();
  }
}

/**
 * Parses "mask:patch=4,p=0.4", "mask:p=0.2" (pixels), "blockaverage:k=2" or
 * "fourier:center=8,random=8" (the CLI's --corruption).
 */
export function parseCorruption(text: string): CorruptionSpec {
  if (typeof text !== 'string') throw new TypeError(`corruption: expected a string such as "mask:patch=4,p=0.4", got ${typeof text}`);
  const [kind, rest = ''] = text.split(':', 2) as [string, string?];
  const fields = new Map<string, number>();
  for (const part of rest === '' ? [] : rest.split(',')) {
    const m = /^([a-z]+)=([0-9.eE+-]+)$/.exec(part.trim());
    if (!m || !Number.isFinite(Number(m[2])))
      throw new TypeError(`corruption "${text}": expected name=number pairs after the colon, got "${part}"`);
    fields.set(m[1]!, Number(m[2]));
  }
  const allowed: Record<string, string[]> = { mask: ['patch', 'p'], blockaverage: ['k'], fourier: ['center', 'random'] };
  if (!Object.hasOwn(allowed, kind))
    throw new TypeError(`corruption "${text}": expected the kind mask, blockaverage or fourier, got "${kind}"`);
  for (const name of fields.keys())
    if (!allowed[kind]!.includes(name))
      throw new TypeError(`corruption "${text}": ${kind} takes ${allowed[kind]!.join(', ')}, got "${name}"`);
  const need = (name: string) => {
    const v = fields.get(name);
    if (v === undefined) throw new TypeError(`corruption "${text}": ${kind} needs ${name}=...`);
    return v;
  };
  if (kind === 'mask') return { kind, patch: fields.get('patch') ?? 1, p: need('p') };
  if (kind === 'blockaverage') return { kind, k: need('k') };
  return { kind: 'fourier', centerLines: need('center'), randomLines: need('random') };
}

// ---------------------------------------------------------------------------------------------- file format

/**
 * Saves atomically to one safetensors file: tensor "measurements" [N, ...measurementShape] (F32), and
 * "mask" [N, maskChannels, H, W] (mask) or "lines" [N, H] (fourier) as F32 0/1; metadata "format"
 * ("kintsugi-measurements"), "version" ("1"), "kind", "signal_shape" (JSON), "sigma0" (decimal),
 * "seed" (decimal, or "" for a user's own data), "k" (block averaging) and "provenance" (JSON).
 */
export async function saveMeasurements(path: string, set: MeasurementSet): Promise<void> {
  if (!(set instanceof MeasurementSet)) throw new TypeError('set: expected a MeasurementSet');
  const tensors = new Map<string, SafetensorsInput>([
    ['measurements', { shape: [set.count, ...set.measurementShape], data: set.measurements }],
  ]);
  const [, H, W] = set.signalShape as [number, number, number];
  const p = set.params;
  if (p.kind === 'mask') tensors.set('mask', { shape: [set.count, p.maskChannels, H, W], data: Float32Array.from(p.mask) });
  if (p.kind === 'fourier') tensors.set('lines', { shape: [set.count, H], data: Float32Array.from(p.lines) });
  const metadata: Record<string, string> = {
    format: MEASUREMENTS_FORMAT,
    version: MEASUREMENTS_VERSION,
    kind: p.kind,
    signal_shape: JSON.stringify(set.signalShape),
    sigma0: String(set.sigma0),
    seed: set.seed ?? '',
    provenance: JSON.stringify(set.provenance),
  };
  if (p.kind === 'blockaverage') metadata.k = String(p.k);
  await writeSafetensors(path, tensors, metadata);
}

/** 0/1 floats to bytes; anything else is an error naming the tensor and the first bad value. */
function binary(data: Float32Array, what: string, source: string): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== 0 && v !== 1) throw new Error(`${source}: tensor "${what}" must hold 0 or 1, got ${v} at index ${i}`);
    out[i] = v;
  }
  return out;
}

/** Loads a file written by saveMeasurements, checking everything against the format. */
export async function loadMeasurements(path: string): Promise<MeasurementSet> {
  const file = await readSafetensors(path);
  const meta = file.metadata;
  const bad = (msg: string) => new Error(`${path}: ${msg}`);
  if (meta.format !== MEASUREMENTS_FORMAT)
    throw bad(`not a measurement data set: metadata "format" is ${JSON.stringify(meta.format)}, expected "${MEASUREMENTS_FORMAT}"`);
  if (meta.version !== MEASUREMENTS_VERSION)
    throw bad(`unsupported version ${JSON.stringify(meta.version)}, expected "${MEASUREMENTS_VERSION}"`);
  const kind = meta.kind;
  if (kind !== 'mask' && kind !== 'blockaverage' && kind !== 'fourier')
    throw bad(`unknown operator kind ${JSON.stringify(kind)}, expected "mask", "blockaverage" or "fourier"`);
  let signalShape: unknown;
  try {
    signalShape = JSON.parse(meta.signal_shape ?? '');
  } catch {
    throw bad(`metadata "signal_shape" must be a JSON array [C, H, W], got ${JSON.stringify(meta.signal_shape)}`);
  }
  if (!Array.isArray(signalShape) || signalShape.length !== 3 || !signalShape.every((d) => Number.isSafeInteger(d) && d >= 1 && d <= 65536))
    throw bad(`metadata "signal_shape" must be [C, H, W] of positive integers, got ${JSON.stringify(signalShape)}`);
  const [C, H, W] = signalShape as [number, number, number];
  const sigma0 = Number(meta.sigma0);
  if (meta.sigma0 === undefined || meta.sigma0 === '' || !(sigma0 >= 0) || !Number.isFinite(sigma0))
    throw bad(`metadata "sigma0" must be a number >= 0, got ${JSON.stringify(meta.sigma0)}`);
  const seed = meta.seed ?? '';
  if (seed !== '' && !/^\d{1,20}$/.test(seed)) throw bad(`metadata "seed" must be a decimal integer or empty, got ${JSON.stringify(seed)}`);
  let provenance: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(meta.provenance ?? '{}');
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) provenance = parsed as Record<string, unknown>;
  } catch {
    throw bad(`metadata "provenance" must be a JSON object, got ${JSON.stringify(meta.provenance)}`);
  }
  const expected = new Set(['measurements', ...(kind === 'mask' ? ['mask'] : kind === 'fourier' ? ['lines'] : [])]);
  for (const name of file.tensors.keys())
    if (!expected.has(name)) throw bad(`unexpected tensor "${name}" for kind "${kind}" (expected ${[...expected].join(', ')})`);
  const get = (name: string) => {
    const t = file.tensors.get(name);
    if (!t) throw bad(`missing tensor "${name}" (kind "${kind}" needs ${[...expected].join(', ')})`);
    return t;
  };
  const y = get('measurements');
  let params: OperatorParams;
  let mshape: number[];
  if (kind === 'mask') {
    const m = get('mask');
    if (m.shape.length !== 4 || m.shape[0]! < 1 || !(m.shape[1] === 1 || m.shape[1] === C) || m.shape[2] !== H || m.shape[3] !== W)
      throw bad(
        `tensor "mask" must be [N, 1 or ${C}, ${H}, ${W}] (signal_shape ${JSON.stringify(signalShape)}), got ${JSON.stringify(m.shape)}`,
      );
    params = { kind, mask: binary(m.data, 'mask', path), maskChannels: m.shape[1]! };
    mshape = [m.shape[0]!, C, H, W];
  } else if (kind === 'fourier') {
    const l = get('lines');
    if (l.shape.length !== 2 || l.shape[0]! < 1 || l.shape[1] !== H)
      throw bad(`tensor "lines" must be [N, ${H}], got ${JSON.stringify(l.shape)}`);
    params = { kind, lines: binary(l.data, 'lines', path) };
    mshape = [l.shape[0]!, C, H, W];
  } else {
    const k = Number(meta.k);
    if (!Number.isSafeInteger(k) || k < 1 || H % k || W % k)
      throw bad(`metadata "k" must be a positive integer dividing ${H} and ${W}, got ${JSON.stringify(meta.k)}`);
    params = { kind, k };
    mshape = [y.shape[0] ?? 0, C, H / k, W / k];
  }
  if (y.shape.length !== 4 || y.shape.some((d, i) => d !== mshape[i]) || mshape[0]! < 1)
    throw bad(`tensor "measurements" must be ${JSON.stringify(mshape)}, got ${JSON.stringify(y.shape)}`);
  const nonFinite = y.data.findIndex((v) => !Number.isFinite(v));
  if (nonFinite >= 0) throw bad(`tensor "measurements" holds a non-finite value (${y.data[nonFinite]}) at index ${nonFinite}`);
  try {
    return new MeasurementSet({
      signalShape: [C, H, W],
      measurements: y.data,
      params,
      sigma0,
      seed: seed === '' ? null : seed,
      provenance,
    });
  } catch (e) {
    throw bad((e as Error).message);
  }
}
