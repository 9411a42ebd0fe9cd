import { cudaStatus } from '../lib/index.ts';

const status = cudaStatus();
/** Set by .gpu/env.sh (bench/gpu-env.sh) on the GPU machine: there a missing GPU is a failure, not a skip. */
export const expectGpu = process.env.KINTSUGI_EXPECT_GPU === '1';
export const hasCuda = status.deviceCount > 0;
export const cudaSkipReason = hasCuda ? '' : `skipped: ${status.reason}`;

/** Deterministic test inputs that are never zero: |x| in [0.05, 2]. */
export function testValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = (u < 0.5 ? -1 : 1) * (0.05 + 1.95 * Math.abs(2 * u - 1));
  }
  return out;
}

/** Normalised mean squared error sum((a-b)^2) / sum(b^2); NaN anywhere gives NaN. */
export function nmse(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = actual[i]! - expected[i]!;
    num += d * d;
    den += expected[i]! * expected[i]!;
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : num / den;
}

export function maxAbs(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (Number.isNaN(d)) return NaN;
    m = Math.max(m, d);
  }
  return m;
}

/**
 * Counts the turns of the event loop (a chain of setImmediate callbacks, one per turn) while `work` runs.
 * A count, not a duration: it does not change when a loaded machine stretches every interval, so tests
 * can assert on it. A loop blocked by the work turns at most once or twice.
 */
export async function countLoopTurns<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
  let turns = 0;
  let running = true;
  const turn = () => {
    if (!running) return;
    turns++;
    setImmediate(turn);
  };
  setImmediate(turn);
  try {
    const result = await work();
    return { result, turns };
  } finally {
    running = false;
  }
}

/** Runs `work` while a 5 ms interval timer counts ticks; returns the ticks, the longest gap and the time taken (for reports, not assertions). */
export async function measureEventLoop<T>(work: () => Promise<T>): Promise<{ result: T; ticks: number; longestGap: number; took: number }> {
  let ticks = 0;
  let longestGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
    ticks++;
  }, 5);
  const start = performance.now();
  try {
    const result = await work();
    return { result, ticks, longestGap, took: performance.now() - start };
  } finally {
    clearInterval(timer);
  }
}

/**
 * n smooth 8x8 blobs at random places on a -1 background, values in [-1, 1]: a data set with
 * structure to learn, made without any file (a seeded linear congruential generator places them).
 */
export function blobs(n: number, seed = 1): { images: Float32Array; shape: [number, number, number, number] } {
  const images = new Float32Array(n * 64);
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < n; i++) {
    const cx = 1 + 6 * rnd(),
      cy = 1 + 6 * rnd();
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) images[i * 64 + y * 8 + x] = 2 * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 3) - 1;
  }
  return { images, shape: [n, 1, 8, 8] };
}
