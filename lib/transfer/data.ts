// Data specifications of `kintsugi transfer` (docs/transfer.md): the paper's two problems built in, or
// your own pairs as .npy files.
//   langevin[:beta=B]       conditioned-diffusion paths (langevin.ts); sources β = 1..10 when no beta
//   mnist[:digit=D]         MNIST digits with y = x + N(0, I/4); sources digits 1..9 when no digit
//   npy:X.npy,Y.npy         one task: x [n, dx] and y [n, dy] (float32 or float64)
//   npy:DIR                 sources: DIR/x-<k>.npy and DIR/y-<k>.npy for k = 0, 1, ...
// Built-in sets are drawn from fixed seeds; the `role` keeps the target's training pairs, its test
// conditions and the sources apart.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../data/npy.ts';
import { seededNormals } from '../metrics/normals.ts';
import { langevinTask, measurementMatrix, PATH_STEPS, Y_DIM } from './langevin.ts';
import { loadMnistDigit, MNIST_PIXELS } from './mnist.ts';
import type { PairSet } from './train.ts';

export type Role = 'train' | 'test';
const SEED = 20250206n;

export interface DataSpec {
  kind: 'langevin' | 'mnist' | 'npy';
  /** β for langevin, the digit for mnist; undefined: the sources. */
  param?: number;
  paths?: string[];
}

export function parseDataSpec(spec: string, what = '--data'): DataSpec {
  const [kind, rest] = [spec.split(':')[0]!, spec.slice(spec.indexOf(':') + 1)];
  const hasRest = spec.includes(':');
  if (kind === 'langevin' || kind === 'mnist') {
    if (!hasRest) return { kind };
    const key = kind === 'langevin' ? 'beta' : 'digit';
    const m = new RegExp(`^${key}=(-?[0-9.]+)$`).exec(rest);
    if (!m) throw new Error(`${what}: expected ${kind} or ${kind}:${key}=<number>, got "${spec}"`);
    const v = Number(m[1]);
    if (kind === 'mnist' && !(Number.isInteger(v) && v >= 0 && v <= 9)) throw new Error(`${what}: digit must be 0..9, got "${m[1]}"`);
    return { kind, param: v };
  }
  if (kind === 'npy' && hasRest && rest.length > 0) return { kind, paths: rest.split(',') };
  throw new Error(`${what}: expected langevin[:beta=B], mnist[:digit=D], npy:X.npy,Y.npy or npy:DIR, got "${spec}"`);
}

/** x and y dimensions of a spec's pairs. */
export function dimsOf(spec: DataSpec, sets: PairSet[]): { xDim: number; yDim: number } {
  if (spec.kind === 'langevin') return { xDim: PATH_STEPS, yDim: Y_DIM };
  if (spec.kind === 'mnist') return { xDim: MNIST_PIXELS, yDim: MNIST_PIXELS };
  const s = sets[0]!;
  return { xDim: s.x.length / s.n, yDim: s.y.length / s.n };
}

async function npyPairs(xPath: string, yPath: string): Promise<PairSet> {
  const [x, y] = [await readNpy(xPath), await readNpy(yPath)];
  for (const [a, p] of [
    [x, xPath],
    [y, yPath],
  ] as const)
    if (a.shape.length !== 2) throw new Error(`${p}: expected a 2-D array [n, d], got shape [${a.shape.join(', ')}]`);
  if (x.shape[0] !== y.shape[0]) throw new Error(`${xPath} has ${x.shape[0]} rows, ${yPath} ${y.shape[0]}: pairs need one y per x`);
  const f32 = (d: ArrayLike<number>) => Float32Array.from(d);
  return { x: f32(x.data), y: f32(y.data), n: x.shape[0]! };
}

function mnistPairs(images: Float32Array, count: number, stream: bigint): PairSet {
  const z = seededNormals(images.length, SEED, stream);
  return { x: images, y: Float32Array.from(images, (v, i) => v + 0.5 * z[i]!), n: count };
}

/**
 * The pairs a spec names. Sources (no param): every task, `n` pairs each. A target (param given): `n`
 * pairs; role 'test' draws them from a part of the data that role 'train' never uses.
 */
export async function loadPairs(spec: DataSpec, o: { role: Role; n: number; offset?: number }): Promise<PairSet[]> {
  if (spec.kind === 'npy') {
    const [p, q] = spec.paths!;
    if (q !== undefined) return [await npyPairs(p!, q)];
    const sets: PairSet[] = [];
    for (let k = 0; existsSync(join(p!, `x-${k}.npy`)); k++) sets.push(await npyPairs(join(p!, `x-${k}.npy`), join(p!, `y-${k}.npy`)));
    if (sets.length === 0) throw new Error(`${p}: no x-0.npy / y-0.npy task files in this directory`);
    return sets;
  }
  if (spec.kind === 'langevin') {
    const M = measurementMatrix();
    if (spec.param === undefined) return Array.from({ length: 10 }, (_, k) => langevinTask(k + 1, o.n, M, SEED, k));
    return [langevinTask(spec.param, o.n, M, SEED + (o.role === 'test' ? 1n : 2n), 100 + Math.round(spec.param * 10))];
  }
  if (spec.param === undefined) {
    const sets: PairSet[] = [];
    for (let d = 1; d <= 9; d++) {
      const { images, count } = await loadMnistDigit(d);
      const k = Math.min(o.n, count);
      sets.push(mnistPairs(images.slice(0, k * MNIST_PIXELS), k, BigInt(d)));
    }
    return sets;
  }
  // A target digit: its last 100 images are the test conditions, the others the training pool.
  const { images, count } = await loadMnistDigit(spec.param);
  const testCount = Math.min(100, Math.floor(count / 2));
  const [lo, hi] = o.role === 'test' ? [count - testCount, count] : [0, count - testCount];
  const k = Math.min(o.n, hi - lo);
  return [
    mnistPairs(images.slice(lo * MNIST_PIXELS, (lo + k) * MNIST_PIXELS), k, 200n + BigInt(spec.param) * 2n + (o.role === 'test' ? 1n : 0n)),
  ];
}
