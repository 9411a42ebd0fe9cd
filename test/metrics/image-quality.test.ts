// PSNR and SSIM against values computed independently: closed forms (a constant offset, constant
// images), a direct double-precision SSIM written here with the 2-D window summed point by point (the
// library filters separably), and, where /usr/bin/python3 has torch, the same definitions in torch.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeNpy } from '../../lib/data/npy.ts';
import { loadFashionMnist } from '../../lib/data/fashion-mnist.ts';
import { psnr, ssim, tensor } from '../../lib/index.ts';
import { seededNormals } from '../../lib/metrics/normals.ts';

const PYTHON = '/usr/bin/python3';
const hasTorch = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;

/** Deterministic pseudo-random values in [lo, hi) (a test-local LCG, independent of the library). */
function lcg(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((hi - lo) * s) / 2 ** 32;
  });
}

/** SSIM of one plane by the paper's definition, window positions enumerated directly (double). */
function ssimDirect(x: ArrayLike<number>, y: ArrayLike<number>, h: number, w: number, L: number): number {
  const win: number[][] = [];
  let total = 0;
  for (let i = 0; i < 11; i++) {
    win.push([]);
    for (let j = 0; j < 11; j++) {
      const v = Math.exp(-((i - 5) ** 2 + (j - 5) ** 2) / (2 * 1.5 ** 2));
      win[i]!.push(v);
      total += v;
    }
  }
  const [c1, c2] = [(0.01 * L) ** 2, (0.03 * L) ** 2];
  let sum = 0;
  let count = 0;
  for (let oy = 0; oy + 11 <= h; oy++)
    for (let ox = 0; ox + 11 <= w; ox++) {
      let [mx, my] = [0, 0];
      for (let i = 0; i < 11; i++)
        for (let j = 0; j < 11; j++) {
          const g = win[i]![j]! / total;
          mx += g * x[(oy + i) * w + ox + j]!;
          my += g * y[(oy + i) * w + ox + j]!;
        }
      let [vx, vy, cxy] = [0, 0, 0];
      for (let i = 0; i < 11; i++)
        for (let j = 0; j < 11; j++) {
          const g = win[i]![j]! / total;
          const [a, b] = [x[(oy + i) * w + ox + j]! - mx, y[(oy + i) * w + ox + j]! - my];
          vx += g * a * a;
          vy += g * b * b;
          cxy += g * a * b;
        }
      sum += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      count++;
    }
  return sum / count;
}

describe('PSNR', () => {
  it('of a constant offset c is 10 log10(L^2 / c^2), per image', async () => {
    const [n, size] = [3, 2 * 8 * 8];
    const x = new Float64Array(lcg(n * size, 1));
    const offsets = [0.5, 0.1, 0.02];
    const y = x.map((v, k) => v + offsets[Math.floor(k / size)]!);
    const r = await psnr({ data: x, shape: [n, 2, 8, 8] }, { data: y, shape: [n, 2, 8, 8] });
    offsets.forEach((c, i) => expect(r.perImage[i]).toBeCloseTo(10 * Math.log10(4 / (c * c)), 9));
    expect(r.mean).toBeCloseTo(offsets.reduce((s, c) => s + 10 * Math.log10(4 / (c * c)), 0) / 3, 9);
    // Data range 1: the value drops by 20 log10(2).
    const r1 = await psnr({ data: x, shape: [n, 2, 8, 8] }, { data: y, shape: [n, 2, 8, 8] }, { dataRange: 1 });
    expect(r.perImage[0]! - r1.perImage[0]!).toBeCloseTo(20 * Math.log10(2), 9);
  });

  it('takes tensors, is +Infinity for identical images and rejects mismatched shapes and ranges', async () => {
    const data = lcg(2 * 16, 2);
    using a = tensor(data, [2, 1, 4, 4]);
    expect((await psnr(a, a)).perImage).toEqual(new Float64Array([Infinity, Infinity]));
    await expect(psnr(a, { data, shape: [2, 1, 16] })).rejects.toThrow(/b: expected 4 dimensions, got shape \[2,1,16\]/);
    await expect(psnr(a, { data: data.subarray(16), shape: [1, 1, 4, 4] })).rejects.toThrow(
      /b: expected the shape of a \[2,1,4,4\], got \[1,1,4,4\]/,
    );
    await expect(psnr(a, a, { dataRange: 0 })).rejects.toThrow(/options.dataRange: expected a finite number > 0, got 0/);
    await expect(psnr([1, 2] as never, a)).rejects.toThrow(
      /a: expected a Tensor or \{ data: Float32Array \| Float64Array, shape \}, got Array/,
    );
  });
});

describe('SSIM', () => {
  it('of an image with itself is 1', async () => {
    const x = lcg(2 * 3 * 20 * 24, 3);
    const r = await ssim({ data: x, shape: [2, 3, 20, 24] }, { data: x, shape: [2, 3, 20, 24] });
    for (const v of r.perImage) expect(v).toBeCloseTo(1, 12);
  });

  it('of constant images a and b is (2ab + C1) / (a^2 + b^2 + C1)', async () => {
    // Constant planes have zero local variance: the structure term is C2 / C2 = 1 at every position.
    const [h, w] = [12, 15];
    const pairs = [
      [0.3, -0.2],
      [1, 0.9],
      [-1, 1],
    ] as const;
    const x = new Float32Array(pairs.length * h * w);
    const y = new Float32Array(pairs.length * h * w);
    pairs.forEach(([a, b], i) => {
      x.fill(a, i * h * w, (i + 1) * h * w);
      y.fill(b, i * h * w, (i + 1) * h * w);
    });
    const r = await ssim({ data: x, shape: [3, 1, h, w] }, { data: y, shape: [3, 1, h, w] });
    const c1 = (0.01 * 2) ** 2;
    pairs.forEach(([a, b], i) => {
      const [fa, fb] = [Math.fround(a), Math.fround(b)];
      expect(r.perImage[i]).toBeCloseTo((2 * fa * fb + c1) / (fa * fa + fb * fb + c1), 12);
    });
  });

  it('matches the definition evaluated window by window, averaging channels', async () => {
    const [c, h, w] = [2, 17, 14];
    const x = lcg(c * h * w, 4);
    const noise = lcg(c * h * w, 5, -0.3, 0.3);
    const y = x.map((v, k) => 0.8 * v + noise[k]! + 0.1);
    for (const L of [2, 1]) {
      const r = await ssim({ data: x, shape: [1, c, h, w] }, { data: y, shape: [1, c, h, w] }, { dataRange: L });
      const planes = [0, 1].map((ch) =>
        ssimDirect(x.subarray(ch * h * w, (ch + 1) * h * w), y.subarray(ch * h * w, (ch + 1) * h * w), h, w, L),
      );
      expect(r.perImage[0]).toBeCloseTo((planes[0]! + planes[1]!) / 2, 12);
      expect(r.perImage[0]).toBeLessThan(0.99);
    }
  });

  it('rejects images smaller than the window', async () => {
    const x = lcg(10 * 10, 6);
    await expect(ssim({ data: x, shape: [1, 1, 10, 10] }, { data: x, shape: [1, 1, 10, 10] })).rejects.toThrow(
      /11x11 window needs images of at least 11x11, got 10x10/,
    );
  });
});

describe.skipIf(!hasTorch)(`PSNR and SSIM against torch (needs ${PYTHON} with torch and numpy; skipped when absent)`, () => {
  it('agree on Fashion-MNIST images and noisy, blurred-ish copies of them', async () => {
    const data = await loadFashionMnist({ limit: 4 });
    const noise = seededNormals(data.images.length, 9n, 0n);
    const noisy = data.images.map((v, k) => Math.min(1, Math.max(-1, v + 0.1 * (1 + (k % 3)) * noise[k]!)));
    const shape = data.shape;
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-ssim-'));
    try {
      writeFileSync(join(dir, 'x.npy'), encodeNpy({ shape, data: data.images }));
      writeFileSync(join(dir, 'y.npy'), encodeNpy({ shape, data: noisy }));
      // The same definitions, written with torch's conv2d on double tensors.
      const script = `
import json, sys, numpy as np, torch
x = torch.from_numpy(np.load(sys.argv[1]).astype(np.float64)); y = torch.from_numpy(np.load(sys.argv[2]).astype(np.float64))
L = 2.0
mse = ((x - y) ** 2).flatten(1).mean(1)
psnr = 10 * torch.log10(L * L / mse)
g = torch.exp(-(torch.arange(11, dtype=torch.float64) - 5) ** 2 / (2 * 1.5 ** 2)); g = g / g.sum()
win = (g[:, None] * g[None, :])[None, None]
C = x.shape[1]
f = lambda t: torch.nn.functional.conv2d(t.reshape(-1, 1, *t.shape[2:]), win).reshape(t.shape[0], C, t.shape[2] - 10, t.shape[3] - 10)
mx, my = f(x), f(y)
vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
print(json.dumps({"psnr": psnr.tolist(), "ssim": m.mean((2, 3)).mean(1).tolist()}))
`;
      const run = spawnSync(PYTHON, ['-c', script, join(dir, 'x.npy'), join(dir, 'y.npy')], { encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      const ref = JSON.parse(run.stdout) as { psnr: number[]; ssim: number[] };
      const [p, s] = [
        await psnr({ data: data.images, shape }, { data: noisy, shape }),
        await ssim({ data: data.images, shape }, { data: noisy, shape }),
      ];
      ref.psnr.forEach((v, i) => expect(p.perImage[i]).toBeCloseTo(v, 9));
      ref.ssim.forEach((v, i) => expect(s.perImage[i]).toBeCloseTo(v, 9));
      expect(Math.max(...s.perImage)).toBeLessThan(0.95);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
