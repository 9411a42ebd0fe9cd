// Reads the PyTorch-generated golden fixtures (test/fixtures/unet, written by test/interop/make_fixtures.py)
// keeping float64 precision. Deliberately separate from lib/safetensors.ts, so a bug there cannot
// hide a bug in what the fixtures are compared with.
import { readFileSync } from 'node:fs';

export interface Fixture {
  tensors: Map<string, { shape: number[]; data: Float64Array }>;
  metadata: Record<string, string>;
}

export function readFixture(path: string): Fixture {
  const bytes = readFileSync(path);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, unknown>;
  const base = 8 + headerLen;
  const tensors = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const {
      dtype,
      shape,
      data_offsets: [begin, end],
    } = value as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const raw = bytes.subarray(base + begin, base + end);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    if (dtype === 'F64') for (let i = 0; i < n; i++) data[i] = raw.readDoubleLE(8 * i);
    else if (dtype === 'F32') for (let i = 0; i < n; i++) data[i] = raw.readFloatLE(4 * i);
    else throw new Error(`fixture ${path}: unexpected dtype ${dtype} for ${key}`);
    tensors.set(key, { shape, data });
  }
  return { tensors, metadata: (header.__metadata__ ?? {}) as Record<string, string> };
}

export function get(f: Fixture, key: string): Float64Array {
  const t = f.tensors.get(key);
  if (!t) throw new Error(`fixture has no tensor "${key}"`);
  return t.data;
}

/** ||a - b|| / ||b||, with `floor` guarding near-zero references (structurally zero gradients). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), floor);
}
