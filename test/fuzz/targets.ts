// The fuzz targets: every parser and loader of files that may come from strangers, each with valid
// seed files (made by the library's writers or built by hand for what they never write) mutated
// blindly, and a structure-aware generator that produces well-formed containers with hostile
// contents (sizes at 2^31, 2^32, 2^53; duplicate names; lying lengths; wrong dtypes) so the inputs
// get past the outer checks (CRCs, JSON) to the inner ones. Results that parse are checked for
// consistency (sizes agree with shapes), so a parser that silently returns garbage fails too.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { readCheckpoint, saveCheckpoint } from '../../lib/checkpoint.ts';
import { loadMeasurements, MeasurementSet, saveMeasurements } from '../../lib/corruption/dataset.ts';
import { decodeIdx, encodeIdx, type IdxData } from '../../lib/data/idx.ts';
import { readMaskedImageFolder, readMeasurementNpy } from '../../lib/data/measurements.ts';
import { decodeNpy, encodeNpy } from '../../lib/data/npy.ts';
import { decodePng, encodePng, type PngImage } from '../../lib/data/png.ts';
import { readDiffemState } from '../../lib/diffem/em.ts';
import { loadBootstrap } from '../../lib/bootstrap/run.ts';
import { AdamW, EMA } from '../../lib/optim.ts';
import { Generator } from '../../lib/random.ts';
import { decodeSafetensors, encodeSafetensors } from '../../lib/safetensors.ts';
import { NoiseSchedule } from '../../lib/schedule.ts';
import { resizedConfig, UNet, type UNetConfig } from '../../lib/unet.ts';
import type { FuzzTarget } from './harness.ts';
import { concat, EDGE_NUMBERS, fixPngCrcs, ihdr, mutated, rawChunk, rawPng, rawSafetensors } from './mutate.ts';

const invariant = (ok: boolean, what: string) => {
  if (!ok) throw new Error(`invariant: ${what}`);
};
const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const utf8 = (s: string) => new TextEncoder().encode(s);
/** A JSON value that is anything at all, for replacing one field of a header. */
const anyJson = fc.oneof(
  fc.constantFrom(...EDGE_NUMBERS),
  fc.string({ maxLength: 8 }),
  fc.constantFrom(null, true, false, [], {}, [1, 2], '__proto__', 'F32'),
  fc.array(fc.constantFrom(...EDGE_NUMBERS), { maxLength: 4 }),
);

// ---------------------------------------------------------------------------------------------- safetensors

const F16_ONE = 0x3c00;
function safetensorsSeeds(): Uint8Array[] {
  const seeds = [
    encodeSafetensors(
      { a: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, b: { shape: [], data: Float32Array.of(7) } },
      { k: 'v' },
    ),
    encodeSafetensors(
      new Map([
        ['w', { shape: [4], data: Float32Array.of(1, -2, 3, -4), dtype: 'BF16' as const }],
        ['empty', { shape: [0, 5], data: new Float32Array(0) }],
      ]),
    ),
    encodeSafetensors({}),
  ];
  const f16 = new Uint8Array(new Uint16Array([F16_ONE, F16_ONE]).buffer);
  const f64 = new Uint8Array(new Float64Array([1.5]).buffer);
  seeds.push(
    rawSafetensors(
      '{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"d":{"dtype":"F64","shape":[1],"data_offsets":[4,12]}}',
      concat([f16, f64]),
    ),
  );
  return seeds;
}

const tensorEntry = fc.record({
  name: fc.oneof(fc.constantFrom('a', 'b', 'w.0', '__metadata__', '', '__proto__', 'constructor'), fc.string({ maxLength: 6 })),
  dtype: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('F32', 'BF16', 'F16', 'F64') }, { weight: 1, arbitrary: anyJson }),
  shape: fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom(...EDGE_NUMBERS), { maxLength: 4 }) },
    { weight: 1, arbitrary: anyJson },
  ),
  /** How the offsets lie: 0 = right, else a shift of begin and/or end. */
  shiftBegin: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(...EDGE_NUMBERS) }),
  shiftEnd: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(...EDGE_NUMBERS) }),
  drop: fc.constantFrom(undefined, undefined, undefined, undefined, 'dtype', 'shape', 'data_offsets'),
});

/** Well-formed-looking safetensors with hostile entries: the header text is built by hand, so duplicate names survive. */
const structuredSafetensors = fc
  .record({
    entries: fc.array(tensorEntry, { maxLength: 5 }),
    metadata: fc.oneof(
      fc.constant(undefined),
      fc.dictionary(
        fc.string({ maxLength: 4 }),
        fc.oneof({ weight: 4, arbitrary: fc.string({ maxLength: 4 }) }, { weight: 1, arbitrary: anyJson }),
        { maxKeys: 3 },
      ),
      anyJson,
    ),
    extraData: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }) }),
    declaredDelta: fc.oneof(
      { weight: 6, arbitrary: fc.constant(0n) },
      { weight: 1, arbitrary: fc.constantFrom(-1n, 1n, 2n ** 32n, 2n ** 63n) },
    ),
  })
  .map(({ entries, metadata, extraData, declaredDelta }) => {
    const size: Record<string, number> = { F32: 4, BF16: 2, F16: 2, F64: 8 };
    const parts: string[] = [];
    if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
    let offset = 0;
    for (const e of entries) {
      const n =
        Array.isArray(e.shape) && e.shape.every((d) => typeof d === 'number' && d >= 0 && d <= 4) ? product(e.shape as number[]) : 1;
      const bytes = n * (size[e.dtype as string] ?? 1);
      const fields: Record<string, unknown> = {
        dtype: e.dtype,
        shape: e.shape,
        data_offsets: [offset + e.shiftBegin, offset + bytes + e.shiftEnd],
      };
      if (e.drop) delete fields[e.drop];
      parts.push(`${JSON.stringify(e.name)}:${JSON.stringify(fields)}`);
      offset += bytes;
    }
    const header = `{${parts.join(',')}}`;
    const data = new Uint8Array(Math.max(0, offset + extraData)).fill(0x3f);
    const length = BigInt(utf8(header).length) + declaredDelta;
    return rawSafetensors(header, data, length < 0n ? 0n : length & (2n ** 64n - 1n));
  });

const safetensorsTarget: FuzzTarget<Uint8Array> = {
  name: 'safetensors',
  arbitrary: fc.oneof(mutated(safetensorsSeeds()), structuredSafetensors),
  bytesOf: (b) => b,
  source: () => 'fuzz.safetensors',
  codes: ['KINTSUGI_INVALID_SAFETENSORS'],
  allocationRatio: 8, // F16 -> F32 doubles, plus the per-tensor copy
  run(bytes) {
    const file = decodeSafetensors(bytes, 'fuzz.safetensors');
    for (const [name, t] of file.tensors) {
      invariant(t.data.length === product(t.shape), `tensor ${name}: ${t.data.length} values for shape ${t.shape}`);
      invariant(
        t.shape.every((d) => Number.isSafeInteger(d) && d >= 0),
        `tensor ${name}: shape ${t.shape}`,
      );
    }
    invariant(
      Object.values(file.metadata).every((v) => typeof v === 'string'),
      'metadata values are strings',
    );
  },
};

// ---------------------------------------------------------------------------------------------- checkpoints

const CKPT_CONFIG: UNetConfig = { inChannels: 1, channels: 4, mult: [1], resBlocks: 1, attnResolutions: [], resolution: 4 };

async function checkpointSeeds(dir: string): Promise<Uint8Array[]> {
  const net = new UNet(CKPT_CONFIG, { device: 'cpu', seed: 1 });
  const optimizer = new AdamW(net, { lr: 1e-3 });
  const ema = new EMA(net, 0.9);
  const generator = new Generator(5n);
  const paths = [join(dir, 'seed-full.safetensors'), join(dir, 'seed-plain.safetensors')];
  try {
    await saveCheckpoint(paths[0]!, net, { optimizer, ema, generator, step: 3, schedule: { kind: 'linear' }, metadata: { user: 'x' } });
    await saveCheckpoint(paths[1]!, net, { dtype: 'BF16' });
  } finally {
    optimizer.dispose();
    ema.dispose();
    net.dispose();
  }
  const { readFileSync } = await import('node:fs');
  return paths.map((p) => new Uint8Array(readFileSync(p)));
}

/** A seed checkpoint with its metadata fields and tensors rewritten: hostile configs, optimizer state, generators, shapes. */
function structuredCheckpoint(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const decoded = seeds.map((s) => decodeSafetensors(s));
  const metaKey = fc.constantFrom(
    'kintsugi.format',
    'kintsugi.config',
    'kintsugi.step',
    'kintsugi.prediction',
    'kintsugi.schedule',
    'kintsugi.optim',
    'kintsugi.generator',
  );
  const configField = fc.constantFrom(
    'inChannels',
    'outChannels',
    'channels',
    'mult',
    'resBlocks',
    'attnResolutions',
    'resolution',
    'zeroInit',
  );
  const edit = fc.oneof(
    fc.record({
      kind: fc.constant('meta' as const),
      key: metaKey,
      value: fc.oneof(
        fc.string({ maxLength: 6 }),
        anyJson.map((v) => JSON.stringify(v)),
      ),
    }),
    fc.record({
      kind: fc.constant('config' as const),
      field: configField,
      value: fc.oneof(anyJson, fc.array(fc.constantFrom(...EDGE_NUMBERS), { maxLength: 40 })),
    }),
    fc.record({
      kind: fc.constant('optim' as const),
      field: fc.constantFrom('step', 'lr', 'betas', 'eps', 'weightDecay', 'warmupSteps', 'maxGradNorm'),
      value: anyJson,
    }),
    fc.record({
      kind: fc.constant('generator' as const),
      field: fc.constantFrom('seed', 'offset', 'stream'),
      value: fc.oneof(anyJson, fc.constantFrom('18446744073709551616', '99999999999999999999', '-1', '')),
    }),
    fc.record({
      kind: fc.constant('tensor' as const),
      index: fc.nat(),
      action: fc.constantFrom('drop', 'rename', 'reshape', 'nan', 'negate'),
    }),
  );
  return fc.tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 4 })).map(([i, edits]) => {
    const file = decoded[i]!;
    const metadata: Record<string, string> = { ...file.metadata };
    const tensors = new Map([...file.tensors].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }]));
    for (const e of edits) {
      if (e.kind === 'meta') metadata[e.key] = e.value;
      else if (e.kind === 'config' || e.kind === 'optim' || e.kind === 'generator') {
        const key = { config: 'kintsugi.config', optim: 'kintsugi.optim', generator: 'kintsugi.generator' }[e.kind];
        let obj: Record<string, unknown> = {};
        try {
          obj = JSON.parse(metadata[key] ?? '{}');
        } catch {
          /* an earlier edit broke it */
        }
        if (obj === null || typeof obj !== 'object') obj = {};
        obj[e.field] = e.value;
        metadata[key] = JSON.stringify(obj);
      } else {
        const names = [...tensors.keys()];
        if (names.length === 0) continue;
        const name = names[e.index % names.length]!;
        const t = tensors.get(name)!;
        if (e.action === 'drop') tensors.delete(name);
        else if (e.action === 'rename') {
          tensors.delete(name);
          tensors.set(`${name}x`, t);
        } else if (e.action === 'reshape') tensors.set(name, { shape: [t.data.length], data: t.data });
        else if (e.action === 'nan') t.data[0] = NaN;
        else t.data[0] = -1;
      }
    }
    return encodeSafetensors(tensors, metadata); // NaN and negative moments are written as they are: readCheckpoint must refuse them
  });
}

async function checkpointTarget(dir: string): Promise<FuzzTarget<Uint8Array>> {
  const seeds = await checkpointSeeds(dir);
  const path = join(dir, 'fuzz-checkpoint.safetensors');
  return {
    name: 'checkpoint',
    arbitrary: fc.oneof(mutated(seeds), structuredCheckpoint(seeds)),
    bytesOf: (b) => b,
    source: () => path,
    codes: ['KINTSUGI_INVALID_SAFETENSORS', 'KINTSUGI_INVALID_CHECKPOINT'],
    allocationRatio: 12,
    async run(bytes) {
      writeFileSync(path, bytes);
      const c = await readCheckpoint(path);
      invariant(c.params.length > 0 && c.params.every(Number.isFinite), 'finite parameters');
      invariant(c.ema === undefined || c.ema.length === c.params.length, 'EMA size');
      invariant(
        c.optimizer === undefined || (c.optimizer.m.length === c.params.length && c.optimizer.v.every((x) => x >= 0)),
        'optimizer state',
      );
      invariant(Number.isSafeInteger(c.step) && c.step >= 0, 'step');
    },
  };
}

// ---------------------------------------------------------------------------------------------- PNG

/** Packs samples of `depth` bits, rows of `width * samples`, each row led by filter byte 0. */
function packRows(width: number, height: number, samples: number, depth: number, value: (i: number) => number): Uint8Array {
  const rowBytes = Math.ceil((width * samples * depth) / 8);
  const out = new Uint8Array(height * (rowBytes + 1));
  for (let y = 0; y < height; y++)
    for (let i = 0; i < width * samples; i++) {
      const v = value(y * width * samples + i) & ((1 << depth) - 1);
      const at = y * (rowBytes + 1) + 1;
      if (depth === 16) {
        out[at + 2 * i] = v >> 8;
        out[at + 2 * i + 1] = v & 0xff;
      } else if (depth === 8) out[at + i] = v;
      else out[at + ((i * depth) >> 3)]! |= v << (8 - depth - ((i * depth) & 7));
    }
  return out;
}

function pngSeeds(): Uint8Array[] {
  const seeds: Uint8Array[] = [];
  for (const channels of [1, 2, 3, 4] as const) {
    const image: PngImage = {
      width: 5,
      height: 3,
      channels,
      data: Uint8Array.from({ length: 5 * 3 * channels }, (_, i) => (i * 37) & 0xff),
    };
    seeds.push(encodePng(image));
  }
  for (const depth of [1, 2, 4, 16])
    seeds.push(
      rawPng(
        ihdr(7, 3, depth, 0),
        packRows(7, 3, 1, depth, (i) => i * 5),
      ),
    );
  seeds.push(
    rawPng(
      ihdr(3, 2, 16, 6),
      packRows(3, 2, 4, 16, (i) => i * 999),
      [],
      3,
    ),
  );
  const plte = rawChunk(
    'PLTE',
    Uint8Array.from({ length: 12 }, (_, i) => i * 20),
  );
  for (const depth of [1, 2, 4, 8])
    seeds.push(
      rawPng(
        ihdr(6, 2, depth, 3),
        packRows(6, 2, 1, depth, (i) => i % 2),
        [plte, rawChunk('tRNS', Uint8Array.of(0, 128))],
      ),
    );
  seeds.push(
    rawPng(
      ihdr(4, 4, 8, 0, 1),
      packRows(4, 4, 1, 8, (i) => i),
    ),
  ); // interlaced: refused with a clear message
  seeds.push(
    concat([
      rawPng(
        ihdr(2, 2, 8, 2),
        packRows(2, 2, 3, 8, (i) => i),
        [rawChunk('tEXt', utf8('k\0v')), rawChunk('gAMA', Uint8Array.of(0, 0, 0xb1, 0x8f))],
      ),
      utf8('trailing'),
    ]),
  );
  return seeds;
}

const structuredPng = fc
  .record({
    width: fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 1, max: 9 }) },
      { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 65536) },
    ),
    height: fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 1, max: 9 }) },
      { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 65536) },
    ),
    colorType: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(0, 2, 3, 4, 6) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    ),
    depth: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1, 2, 4, 8, 16) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
    interlace: fc.constantFrom(0, 0, 0, 0, 1, 2),
    compression: fc.constantFrom(0, 0, 0, 0, 0, 1),
    filter: fc.constantFrom(0, 0, 0, 0, 0, 1),
    palette: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 300 })),
    trns: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 300 })),
    rowFilters: fc.array(
      fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: fc.integer({ min: 5, max: 255 }) }),
      { minLength: 1, maxLength: 9 },
    ),
    sizeDelta: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
    splits: fc.integer({ min: 1, max: 3 }),
    ancillary: fc.array(
      fc.tuple(fc.constantFrom('tEXt', 'zTXt', 'gAMA', 'aBCD', 'ABCD', 'IHDR', 'PLTE', 'IEND', 'IDAT'), fc.uint8Array({ maxLength: 16 })),
      { maxLength: 2 },
    ),
    badCrc: fc.constantFrom(false, false, false, false, false, false, false, true),
    seed: fc.integer(),
  })
  .map((p) => {
    const samples = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[p.colorType as 0] ?? 1;
    // Image data only for a size worth inflating; huge declared sizes get a few bytes, which must be refused before inflating.
    const small = p.width <= 64 && p.height <= 64;
    const rowBytes = Math.ceil((p.width * samples * Math.min(p.depth, 16)) / 8);
    const rawSize = small ? Math.max(0, p.height * (rowBytes + 1) + p.sizeDelta) : 16;
    const raw = Uint8Array.from({ length: rawSize }, (_, i) => ((i + p.seed) * 2654435761) >>> 24);
    if (small)
      for (let y = 0; y < p.height; y++)
        if (y * (rowBytes + 1) < raw.length) raw[y * (rowBytes + 1)] = p.rowFilters[y % p.rowFilters.length]!;
    const extra: Uint8Array[] = [];
    if (p.palette !== undefined)
      extra.push(
        rawChunk(
          'PLTE',
          Uint8Array.from({ length: p.palette }, (_, i) => i),
        ),
      );
    if (p.trns !== undefined) extra.push(rawChunk('tRNS', new Uint8Array(p.trns)));
    for (const [type, data] of p.ancillary) extra.push(rawChunk(type, data));
    const png = rawPng(ihdr(p.width, p.height, p.depth, p.colorType, p.interlace, p.compression, p.filter), raw, extra, p.splits);
    if (p.badCrc) png[png.length - 20] = png[png.length - 20]! ^ 1;
    return png;
  });

const pngTarget: FuzzTarget<Uint8Array> = {
  name: 'png',
  arbitrary: fc.oneof(
    mutated(pngSeeds()),
    mutated(pngSeeds()).map(fixPngCrcs), // contents mutated behind valid CRCs: reaches IHDR, PLTE, zlib and the filters
    structuredPng,
  ),
  bytesOf: (b) => b,
  source: () => 'fuzz.png',
  codes: ['KINTSUGI_INVALID_PNG'],
  allocationRatio: 40_000, // deflate inflates up to ~1032x, 1-bit palette pixels grow 32x to RGBA
  run(bytes) {
    const img = decodePng(bytes, 'fuzz.png');
    invariant(
      img.data.length === img.width * img.height * img.channels,
      `${img.data.length} bytes for ${img.width}x${img.height}x${img.channels}`,
    );
  },
};

// ---------------------------------------------------------------------------------------------- IDX

function idxSeeds(): Uint8Array[] {
  const arrays: { shape: number[]; data: IdxData }[] = [
    { shape: [2, 3, 3], data: Uint8Array.from({ length: 18 }, (_, i) => i) },
    { shape: [4], data: Int8Array.of(-1, 2, -3, 4) },
    { shape: [2, 2], data: Int16Array.of(-300, 2, 3, 4) },
    { shape: [3], data: Int32Array.of(1 << 30, -5, 6) },
    { shape: [1, 2], data: Float32Array.of(1.5, -2) },
    { shape: [2], data: Float64Array.of(Math.PI, -0) },
    { shape: [0, 7], data: new Uint8Array(0) },
  ];
  return arrays.flatMap((a) => [encodeIdx(a), encodeIdx(a, { gzip: true })]);
}

const structuredIdx = fc
  .record({
    type: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    ),
    dims: fc.oneof(
      { weight: 4, arbitrary: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.array(fc.constantFrom(0, 1, 2 ** 16, 2 ** 31, 2 ** 32 - 1), { maxLength: 6 }) },
    ),
    ndimDelta: fc.constantFrom(0, 0, 0, 0, -1, 1, 200),
    dataDelta: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }) }),
    gzip: fc.boolean(),
    gzipCut: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 12 }) }),
  })
  .map((p) => {
    const size = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 }[p.type as 8] ?? 1;
    const numel = p.dims.every((d) => d <= 5) ? product(p.dims) : 3;
    const header = new Uint8Array(4 + 4 * p.dims.length);
    const view = new DataView(header.buffer);
    header[2] = p.type;
    header[3] = (p.dims.length + p.ndimDelta) & 0xff;
    p.dims.forEach((d, i) => view.setUint32(4 + 4 * i, d >>> 0, false));
    const raw = concat([header, new Uint8Array(Math.max(0, numel * size + p.dataDelta)).fill(0x41)]);
    if (!p.gzip) return raw;
    const z = gzipSync(raw);
    return z.subarray(0, z.length - p.gzipCut);
  });

const idxTarget: FuzzTarget<Uint8Array> = {
  name: 'idx',
  arbitrary: fc.oneof(mutated(idxSeeds()), structuredIdx),
  bytesOf: (b) => b,
  source: () => 'fuzz.idx',
  codes: ['KINTSUGI_INVALID_IDX'],
  allocationRatio: 4000, // gzip inflates up to ~1032x; a copy of the values
  run(bytes) {
    const a = decodeIdx(bytes, 'fuzz.idx');
    invariant(a.data.length === product(a.shape), `${a.data.length} values for shape ${a.shape}`);
  },
};

// ---------------------------------------------------------------------------------------------- .npy

function npyWithHeader(text: string, data: Uint8Array, version = 1, declared?: number): Uint8Array {
  const header = version === 3 ? utf8(text) : Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  const lengthSize = version === 1 ? 2 : 4;
  const out = new Uint8Array(8 + lengthSize + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, (declared ?? header.length) & 0xffff, true);
  else view.setUint32(8, (declared ?? header.length) >>> 0, true);
  out.set(header, 8 + lengthSize);
  out.set(data, 8 + lengthSize + header.length);
  return out;
}

function npySeeds(): Uint8Array[] {
  return [
    encodeNpy({ shape: [2, 3], data: Float32Array.from({ length: 6 }, (_, i) => i / 3) }),
    encodeNpy({ shape: [4], data: Float64Array.of(1, 2, 3, 4) }),
    encodeNpy({ shape: [], data: Uint8Array.of(9) }),
    encodeNpy({ shape: [0, 3], data: new Float32Array(0) }),
    npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", new Uint8Array(8), 2),
    npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }\n", new Uint8Array(8), 3),
  ];
}

const structuredNpy = fc
  .record({
    keys: fc.array(fc.constantFrom('descr', 'fortran_order', 'shape', 'extra', 'descr'), { minLength: 0, maxLength: 5 }),
    descr: fc.oneof(
      fc.constantFrom("'<f4'", "'<f8'", "'|u1'", "'>f4'", "'<i4'", "'|b1'", "'<U3'", "[('a', '<f4')]", "'<f4", '"<f8"', "'\\x00'"),
      fc.string({ maxLength: 5 }).map((s) => `'${s}'`),
    ),
    fortran: fc.constantFrom('False', 'True', '0', "'False'", 'None', ''),
    dims: fc.oneof(
      { weight: 4, arbitrary: fc.array(fc.integer({ min: 0, max: 4 }).map(String), { maxLength: 3 }) },
      {
        weight: 1,
        arbitrary: fc.array(
          fc.constantFrom('-1', '3L', '9007199254740993', '18446744073709551616', '1e3', '2**40', '(2,)', "'x'", '4294967296'),
          { maxLength: 4 },
        ),
      },
    ),
    nesting: fc.constantFrom(0, 0, 0, 0, 12),
    version: fc.constantFrom(1, 1, 1, 2, 3, 4),
    declaredDelta: fc.oneof(
      { weight: 6, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.constantFrom(-1, 1, 10_000, 65535, 2 ** 31) },
    ),
    dataDelta: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -9, max: 9 }) }),
    trailing: fc.constantFrom('', '', '', ' ', '\n', 'x', ',', '}'),
  })
  .map((p) => {
    const tuple = p.dims.length === 1 ? `(${p.dims[0]},)` : `(${p.dims.join(', ')})`;
    const values: Record<string, string> = {
      descr: p.descr,
      fortran_order: p.fortran,
      shape: p.nesting ? '('.repeat(p.nesting) + ')'.repeat(p.nesting) : tuple,
      extra: '1',
    };
    const text = `{${p.keys.map((k) => `'${k}': ${values[k]}`).join(', ')}}${p.trailing}`;
    const size = p.descr.includes('f8') ? 8 : p.descr.includes('f4') ? 4 : 1;
    const numel = (p.dims as string[]).every((d) => /^\d$/.test(d)) ? product((p.dims as string[]).map(Number)) : 2;
    const data = new Uint8Array(Math.max(0, numel * size + p.dataDelta)).fill(0x3f);
    const headerLength = p.version === 3 ? utf8(text).length : text.length;
    return npyWithHeader(text, data, p.version, Math.max(0, headerLength + p.declaredDelta));
  });

const npyTarget: FuzzTarget<Uint8Array> = {
  name: 'npy',
  arbitrary: fc.oneof(mutated(npySeeds()), structuredNpy),
  bytesOf: (b) => b,
  source: () => 'fuzz.npy',
  codes: ['KINTSUGI_INVALID_NPY'],
  allocationRatio: 4,
  run(bytes) {
    const a = decodeNpy(bytes, 'fuzz.npy');
    invariant(a.data.length === product(a.shape), `${a.data.length} values for shape ${a.shape}`);
  },
};

// ---------------------------------------------------------------------------------------------- measurement files

async function measurementSeeds(dir: string): Promise<Uint8Array[]> {
  const { readFileSync } = await import('node:fs');
  const y = Float32Array.from({ length: 2 * 1 * 4 * 4 }, (_, i) => Math.sin(i));
  const sets = [
    new MeasurementSet({
      signalShape: [1, 4, 4],
      measurements: y,
      params: { kind: 'mask', mask: Uint8Array.from({ length: 32 }, (_, i) => i % 2), maskChannels: 1 },
      sigma0: 0.1,
      seed: '7',
      provenance: { p: 1 },
    }),
    new MeasurementSet({
      signalShape: [2, 4, 4],
      measurements: Float32Array.from({ length: 2 * 2 * 16 }, (_, i) => i / 7),
      params: { kind: 'fourier', lines: Uint8Array.of(1, 0, 1, 1, 0, 1, 1, 0) },
      sigma0: 0,
    }),
    new MeasurementSet({
      signalShape: [1, 4, 4],
      measurements: Float32Array.from({ length: 2 * 4 }, (_, i) => i),
      params: { kind: 'blockaverage', k: 2 },
      sigma0: 0.5,
    }),
  ];
  const out: Uint8Array[] = [];
  for (const [i, s] of sets.entries()) {
    const p = join(dir, `seed-${i}.measurements.safetensors`);
    await saveMeasurements(p, s);
    out.push(new Uint8Array(readFileSync(p)));
  }
  return out;
}

function structuredMeasurements(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const decoded = seeds.map((s) => decodeSafetensors(s));
  const edit = fc.oneof(
    fc.record({
      kind: fc.constant('meta' as const),
      key: fc.constantFrom('format', 'version', 'kind', 'signal_shape', 'sigma0', 'seed', 'k', 'provenance'),
      value: fc.oneof(
        fc.constantFrom(
          'mask',
          'fourier',
          'blockaverage',
          '[1,4,4]',
          '[2,4,4]',
          '[1,65536,65536]',
          '[1,0,4]',
          'NaN',
          '-1',
          '1e400',
          '99999999999999999999999',
          '{}',
          'null',
          '[]',
        ),
        anyJson.map((v) => JSON.stringify(v)),
      ),
    }),
    fc.record({
      kind: fc.constant('tensor' as const),
      name: fc.constantFrom('measurements', 'mask', 'lines', 'other'),
      shape: fc.oneof(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 5 }), fc.constant(undefined)),
      value: fc.constantFrom(0, 1, 0.5, NaN, Infinity, -1),
    }),
  );
  return fc.tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 3 })).map(([i, edits]) => {
    const file = decoded[i]!;
    const metadata = { ...file.metadata };
    const tensors = new Map([...file.tensors].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }]));
    for (const e of edits) {
      if (e.kind === 'meta') metadata[e.key] = e.value;
      else if (e.shape === undefined) tensors.delete(e.name);
      else {
        const data = new Float32Array(product(e.shape)).fill(e.value);
        tensors.set(e.name, { shape: e.shape, data });
      }
    }
    return encodeSafetensors(tensors, metadata);
  });
}

async function measurementsTarget(dir: string): Promise<FuzzTarget<Uint8Array>> {
  const seeds = await measurementSeeds(dir);
  const path = join(dir, 'fuzz.measurements.safetensors');
  return {
    name: 'measurements',
    arbitrary: fc.oneof(mutated(seeds), structuredMeasurements(seeds)),
    bytesOf: (b) => b,
    source: () => path,
    allocationRatio: 16,
    async run(bytes) {
      writeFileSync(path, bytes);
      const set = await loadMeasurements(path);
      invariant(set.measurements.length === set.count * product(set.measurementShape), 'measurement count');
      invariant(set.measurements.every(Number.isFinite), 'finite measurements');
    },
  };
}

/** Two .npy files (measurements, mask) for readMeasurementNpy: both mutated or generated, the kind chosen at random. */
function npyPairTarget(dir: string): FuzzTarget<{ y: Uint8Array; m: Uint8Array; kind: 'mask' | 'fourier' }> {
  const yPath = join(dir, 'fuzz-y.npy');
  const mPath = join(dir, 'fuzz-mask.npy');
  const ys = [
    encodeNpy({ shape: [2, 1, 3, 3], data: Float32Array.from({ length: 18 }, (_, i) => i) }),
    encodeNpy({ shape: [1, 2, 2, 2], data: new Float64Array(8).fill(0.5) }),
  ];
  const ms = [
    encodeNpy({ shape: [2, 1, 3, 3], data: new Float32Array(18).fill(1) }),
    encodeNpy({ shape: [3, 3], data: Uint8Array.of(1, 0, 1, 0, 1, 0, 1, 1, 1) }),
    encodeNpy({ shape: [2], data: Uint8Array.of(1, 0) }),
  ];
  const shaped = fc
    .tuple(
      fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 5 }),
      fc.constantFrom('f32', 'f64', 'u8'),
      fc.constantFrom(0, 1, 0.5, NaN, 2),
    )
    .map(([shape, t, v]) => {
      const n = product(shape);
      const data =
        t === 'f32'
          ? new Float32Array(n).fill(v)
          : t === 'f64'
            ? new Float64Array(n).fill(v)
            : new Uint8Array(n).fill(Number.isFinite(v) ? v : 3);
      return encodeNpy({ shape, data });
    });
  const one = (seeds: Uint8Array[]) => fc.oneof(fc.constantFrom(...seeds), mutated(seeds), shaped);
  return {
    name: 'measurement-npy',
    arbitrary: fc.record({ y: one(ys), m: one(ms), kind: fc.constantFrom('mask' as const, 'fourier' as const) }),
    bytesOf: ({ y, m }) => concat([y, m]),
    source: () => dir,
    allocationRatio: 64, // the float32 copy, the 0/1 mask, repeated masks for every sample
    async run({ y, m, kind }) {
      writeFileSync(yPath, y);
      writeFileSync(mPath, m);
      const set = await readMeasurementNpy(yPath, mPath, { kind, sigma0: 0.1 });
      invariant(set.measurements.length === set.count * product(set.measurementShape), 'measurement count');
    },
  };
}

/** A folder of two PNG measurements with masks, one file of the four replaced by a mutated or generated PNG. */
function maskedFolderTarget(dir: string): FuzzTarget<{ which: number; png: Uint8Array }> {
  const folder = join(dir, 'masked');
  const names = ['a.png', 'a.mask.png', 'b.png', 'b.mask.png'];
  const img = (c: 1 | 3, fill: (i: number) => number) =>
    encodePng({ width: 4, height: 3, channels: c, data: Uint8Array.from({ length: 12 * c }, (_, i) => fill(i)) });
  const valid = [img(3, (i) => i * 9), img(1, (i) => (i % 3 ? 255 : 0)), img(1, (i) => i), img(1, () => 200)];
  const seeds = [...valid, ...pngSeeds()];
  return {
    name: 'masked-folder',
    arbitrary: fc.record({
      which: fc.integer({ min: 0, max: 3 }),
      png: fc.oneof(fc.constantFrom(...seeds), mutated(seeds).map(fixPngCrcs), structuredPng),
    }),
    bytesOf: ({ png }) => png,
    source: () => folder,
    allocationRatio: 200_000, // a PNG's pixels (see png), then as float32 per channel
    async run({ which, png }) {
      if (!existsSync(folder)) {
        mkdirSync(folder);
        names.forEach((n, i) => writeFileSync(join(folder, n), valid[i]!));
      }
      writeFileSync(join(folder, names[which]!), png);
      try {
        const set = await readMaskedImageFolder(folder, { channels: 1, sigma0: 0.05 });
        invariant(set.count === 2 && set.measurements.every(Number.isFinite), 'two finite measurements');
      } finally {
        writeFileSync(join(folder, names[which]!), valid[which]!); // the other three stay valid for the next input
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------- DiffEM and bootstrap state

function diffemStateTarget(dir: string): FuzzTarget<{ state: Uint8Array; round: number; npy: Uint8Array }> {
  const folder = join(dir, 'diffem');
  const shape = [2, 1, 2, 2];
  const goodState = utf8(JSON.stringify({ format: 'kintsugi-diffem-1', round: 1, shape }) + '\n');
  const goodNpy = encodeNpy({ shape, data: Float32Array.from({ length: 8 }, (_, i) => i) });
  const stateJson = fc
    .record({
      format: fc.oneof(fc.constant('kintsugi-diffem-1'), anyJson),
      round: fc.oneof(fc.constantFrom(0, 1, 2), anyJson),
      shape: fc.oneof(fc.constant(shape), anyJson),
      drop: fc.constantFrom(undefined, undefined, 'format', 'round', 'shape'),
    })
    .map(({ drop, ...s }) => {
      const o: Record<string, unknown> = { ...s };
      if (drop) delete o[drop];
      return utf8(JSON.stringify(o));
    });
  return {
    name: 'diffem-state',
    arbitrary: fc.record({
      state: fc.oneof(
        fc.constant(goodState),
        mutated([goodState]),
        stateJson,
        fc.constantFrom(utf8('null'), utf8('[]'), utf8('"x"'), utf8(''), utf8('{"format":"kintsugi-diffem-1","round":1e400}')),
      ),
      round: fc.constantFrom(1, 1, 1, 2),
      npy: fc.oneof(fc.constant(goodNpy), mutated([goodNpy, ...npySeeds()]), structuredNpy),
    }),
    bytesOf: ({ state, npy }) => concat([state, npy]),
    source: () => folder,
    allocationRatio: 8,
    async run({ state, round, npy }) {
      rmSync(folder, { recursive: true, force: true });
      mkdirSync(folder);
      writeFileSync(join(folder, 'state.json'), state);
      writeFileSync(join(folder, `round-${round}.npy`), npy);
      const s = await readDiffemState(folder, shape);
      invariant(s.x.length === product(shape) && Number.isSafeInteger(s.round) && s.round >= 0, 'state');
    },
  };
}

async function bootstrapTarget(dir: string): Promise<FuzzTarget<Uint8Array>> {
  const folder = join(dir, 'bootstrap');
  mkdirSync(folder, { recursive: true });
  const base: UNetConfig = { inChannels: 1, channels: 4, mult: [1, 1], resBlocks: 1, attnResolutions: [], resolution: 8 };
  const save = async (file: string, config: UNetConfig) => {
    const net = new UNet(config, { device: 'cpu', seed: 3 });
    try {
      await saveCheckpoint(join(folder, file), net);
    } finally {
      net.dispose();
    }
  };
  await save('lowres.safetensors', resizedConfig(base, 4, 1, 1));
  await save('patch.safetensors', resizedConfig(base, 4, 1, 1));
  await save('residual.safetensors', resizedConfig(base, 8, 2, 1));
  const manifest = {
    format: 'kintsugi-bootstrap-1',
    schedule: new NoiseSchedule({ kind: 'linear' }).toJSON(),
    full: 2,
    lowres: { factor: 2, prediction: 'x0', checkpoint: 'lowres.safetensors' },
    patch: { size: 4, stride: 2, window: 'hann', positions: false, prediction: 'x0', checkpoint: 'patch.safetensors' },
    residual: { checkpoint: 'residual.safetensors', conditioned: true, lambda: 0.1, penalty: 'l2' },
  };
  const good = utf8(JSON.stringify(manifest, null, 2));
  const path = join(folder, 'bootstrap.json');
  const section = fc.constantFrom('lowres', 'patch', 'residual', 'schedule', 'top');
  const field = fc.constantFrom(
    'factor',
    'prediction',
    'checkpoint',
    'size',
    'stride',
    'window',
    'positions',
    'conditioned',
    'lambda',
    'penalty',
    'kind',
    'steps',
    'format',
    'full',
    'lowres',
    'patch',
    'residual',
    'schedule',
  );
  const structured = fc
    .array(
      fc.tuple(
        section,
        field,
        fc.oneof(
          anyJson,
          fc.constantFrom('../lowres.safetensors', 'missing.safetensors', 'bootstrap.json', 'residual.safetensors', '/', 'eps', 'v'),
        ),
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((edits) => {
      const m = structuredClone(manifest) as unknown as Record<string, Record<string, unknown>>;
      for (const [s, f, v] of edits) {
        if (s === 'top') (m as Record<string, unknown>)[f] = v;
        else if (m[s] !== null && typeof m[s] === 'object') m[s]![f] = v;
      }
      return utf8(JSON.stringify(m));
    });
  return {
    name: 'bootstrap-manifest',
    arbitrary: fc.oneof(mutated([good]), structured),
    bytesOf: (b) => b,
    source: () => dir, // the manifest, or a checkpoint it names (which may lie beside its folder)
    allocationRatio: 1e9, // the manifest names checkpoints: loading them allocates their weights, whatever the manifest's size
    async run(bytes) {
      writeFileSync(path, bytes);
      const loaded = await loadBootstrap(path, { device: 'cpu' });
      loaded.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------- all

/** The targets hold inputs of different types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTarget = FuzzTarget<any>;

/** Every target, with its seed files made in `dir` (a fresh temporary directory the caller removes). */
export async function makeTargets(dir: string): Promise<AnyTarget[]> {
  return [
    safetensorsTarget,
    await checkpointTarget(dir),
    pngTarget,
    idxTarget,
    npyTarget,
    await measurementsTarget(dir),
    npyPairTarget(dir),
    maskedFolderTarget(dir),
    diffemStateTarget(dir),
    await bootstrapTarget(dir),
  ];
}
