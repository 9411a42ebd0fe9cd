// Double-precision references of the bootstrap views (docs/bootstrap.md), written from the definitions
// and independently of native/: the overlap-add scatters every patch with its window and divides by
// the scattered window sum (the native code gathers per pixel with a separable normaliser).
export type Image4 = readonly [number, number, number, number];
export type Window = 'uniform' | 'triangle' | 'hann';

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export function refPool(x: ArrayLike<number>, [n, c, h, w]: Image4, r: number): Float64Array {
  const out = new Float64Array((n * c * h * w) / (r * r));
  const lh = h / r,
    lw = w / r;
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) out[(p * lh + Math.floor(y / r)) * lw + Math.floor(xx / r)]! += x[(p * h + y) * w + xx]! / (r * r);
  return out;
}

/** x [n, c, h, w] (the small side) -> [n, c, h r, w r]. */
export function refUpsample(x: ArrayLike<number>, [n, c, h, w]: Image4, r: number): Float64Array {
  const H = h * r,
    W = w * r;
  const out = new Float64Array(n * c * H * W);
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < H; y++)
      for (let xx = 0; xx < W; xx++) out[(p * H + y) * W + xx] = x[(p * h + Math.floor(y / r)) * w + Math.floor(xx / r)]!;
  return out;
}

export function refHighPass(x: ArrayLike<number>, s: Image4, r: number): Float64Array {
  const low = refUpsample(refPool(x, s, r), [s[0], s[1], s[2] / r, s[3] / r], r);
  return Float64Array.from(low, (v, i) => x[i]! - v);
}

export function refWindow(kind: Window, u: number, P: number): number {
  if (kind === 'uniform') return 1;
  if (kind === 'triangle') return Math.min(u + 1, P - u);
  return Math.sin((Math.PI * (u + 0.5)) / P) ** 2;
}

export function refOffsets(h: number, w: number, P: number, S: number): [number, number][] {
  const out: [number, number][] = [];
  for (let y = 0; y <= h - P; y += S) for (let x = 0; x <= w - P; x += S) out.push([y, x]);
  return out;
}

export function refExtract(x: ArrayLike<number>, [n, c, h, w]: Image4, P: number, S: number, positions: boolean): Float64Array {
  const offs = refOffsets(h, w, P, S);
  const co = c + (positions ? 2 : 0);
  const out = new Float64Array(n * offs.length * co * P * P);
  let i = 0;
  for (let b = 0; b < n; b++)
    for (const [oy, ox] of offs)
      for (let ch = 0; ch < co; ch++)
        for (let u = 0; u < P; u++)
          for (let v = 0; v < P; v++)
            out[i++] =
              ch < c
                ? x[((b * c + ch) * h + oy + u) * w + ox + v]!
                : ch === c
                  ? h > 1
                    ? (2 * (oy + u)) / (h - 1) - 1
                    : 0
                  : w > 1
                    ? (2 * (ox + v)) / (w - 1) - 1
                    : 0;
  return out;
}

/** Σ_j P_jᵀ (W_j ⊙ patches_j) with W_j = window / (Σ over covering patches of the window). */
export function refOverlapAdd(patches: ArrayLike<number>, [n, c, h, w]: Image4, P: number, S: number, kind: Window): Float64Array {
  const offs = refOffsets(h, w, P, S);
  const num = new Float64Array(n * c * h * w);
  const den = new Float64Array(n * c * h * w);
  let i = 0;
  for (let b = 0; b < n; b++)
    for (const [oy, ox] of offs)
      for (let ch = 0; ch < c; ch++)
        for (let u = 0; u < P; u++)
          for (let v = 0; v < P; v++) {
            const k = ((b * c + ch) * h + oy + u) * w + ox + v;
            const wt = refWindow(kind, u, P) * refWindow(kind, v, P);
            num[k]! += wt * patches[i++]!;
            den[k]! += wt;
          }
  return Float64Array.from(num, (v, k) => v / den[k]!);
}

/** U f_lr + H Σ_j P_jᵀ (W_j ⊙ f_patch_j) (+ f0); either view may be absent. */
export function refAggregate(
  shape: Image4,
  lowres: { f: ArrayLike<number>; r: number } | null,
  patch: { f: ArrayLike<number>; P: number; S: number; window: Window } | null,
  f0: ArrayLike<number> | null,
): Float64Array {
  const out = new Float64Array(numel(shape));
  if (lowres) {
    const up = refUpsample(lowres.f, [shape[0], shape[1], shape[2] / lowres.r, shape[3] / lowres.r], lowres.r);
    up.forEach((v, i) => (out[i]! += v));
  }
  if (patch) {
    const g = refOverlapAdd(patch.f, shape, patch.P, patch.S, patch.window);
    const detail = lowres ? refHighPass(g, shape, lowres.r) : g;
    detail.forEach((v, i) => (out[i]! += v));
  }
  if (f0) for (let i = 0; i < out.length; i++) out[i]! += f0[i]!;
  return out;
}
