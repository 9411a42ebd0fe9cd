// Independent double-precision references for the degradation ops, written from the definitions
// (docs/corruption.md) rather than from the native algorithms: the Helmert basis as explicit vectors
// and dot products (the native code uses running sums), the 2-D DFT as the naive double sum (the
// native code is a radix-2 FFT).

/** Basis vector j of the m-point Helmert basis: the normalised constant for j = 0, else
 *  (1, ..., 1, -j, 0, ..., 0) / sqrt(j (j + 1)) with j ones. */
export function helmertVector(m: number, j: number): Float64Array {
  const v = new Float64Array(m);
  if (j === 0) return v.fill(1 / Math.sqrt(m));
  const s = 1 / Math.sqrt(j * (j + 1));
  for (let i = 0; i < j; i++) v[i] = s;
  v[j] = -j * s;
  return v;
}

/** Vᵀx of block averaging by k for x [N, C, H, W]: coefficient j of block (bi, bj) of plane p at
 *  [p, j, bi, bj]; with `onlyFirst`, coefficient 0 alone ([N, C, H/k, W/k]). Times `scale`. */
export function blockAverageVtRef(x: ArrayLike<number>, shape: readonly number[], k: number, onlyFirst: boolean, scale = 1): Float64Array {
  const [n, c, H, W] = shape as [number, number, number, number];
  const h = H / k,
    w = W / k,
    m = k * k,
    coefs = onlyFirst ? 1 : m;
  const basis = Array.from({ length: m }, (_, j) => helmertVector(m, j));
  const out = new Float64Array(n * c * coefs * h * w);
  for (let p = 0; p < n * c; p++)
    for (let bi = 0; bi < h; bi++)
      for (let bj = 0; bj < w; bj++)
        for (let j = 0; j < coefs; j++) {
          let dot = 0;
          for (let r = 0; r < k; r++)
            for (let s = 0; s < k; s++) dot += basis[j]![r * k + s]! * x[p * H * W + (bi * k + r) * W + bj * k + s]!;
          out[((p * coefs + j) * h + bi) * w + bj] = scale * dot;
        }
  return out;
}

/** V c for an image shape [N, C, H, W]: c holds every coefficient, or coefficient 0 alone (`onlyFirst`). */
export function blockAverageVRef(cf: ArrayLike<number>, shape: readonly number[], k: number, onlyFirst: boolean, scale = 1): Float64Array {
  const [n, c, H, W] = shape as [number, number, number, number];
  const h = H / k,
    w = W / k,
    m = k * k,
    coefs = onlyFirst ? 1 : m;
  const basis = Array.from({ length: m }, (_, j) => helmertVector(m, j));
  const out = new Float64Array(n * c * H * W);
  for (let p = 0; p < n * c; p++)
    for (let bi = 0; bi < h; bi++)
      for (let bj = 0; bj < w; bj++)
        for (let j = 0; j < coefs; j++) {
          const cj = cf[((p * coefs + j) * h + bi) * w + bj]!;
          for (let r = 0; r < k; r++)
            for (let s = 0; s < k; s++) out[p * H * W + (bi * k + r) * W + bj * k + s] += scale * cj * basis[j]![r * k + s]!;
        }
  return out;
}

/** The orthonormal 2-D DFT of x [N, 2, H, W] (channel 0 real, 1 imaginary) from its definition
 *  X[u, v] = (HW)^(-1/2) sum_{a, b} x[a, b] exp(-+2 pi i (u a / H + v b / W)), summed naively as the
 *  separable double sum (a 1-D DFT of every row, then of every column: O(HW (H + W))). */
export function dft2Ref(x: ArrayLike<number>, shape: readonly number[], inverse: boolean): Float64Array {
  const [n, , H, W] = shape as [number, number, number, number];
  const plane = H * W;
  const out = Float64Array.from(x as ArrayLike<number>);
  // One naive 1-D DFT of length len over the lines at base + l * step, elements `stride` apart.
  const dft = (base: number, len: number, stride: number) => {
    const sign = inverse ? 1 : -1;
    const re = new Float64Array(len),
      im = new Float64Array(len);
    for (let u = 0; u < len; u++)
      for (let a = 0; a < len; a++) {
        const ang = (sign * 2 * Math.PI * ((u * a) % len)) / len; // the phase reduced to one turn exactly
        const xr = out[base + a * stride]!,
          xi = out[base + plane + a * stride]!;
        re[u] += xr * Math.cos(ang) - xi * Math.sin(ang);
        im[u] += xr * Math.sin(ang) + xi * Math.cos(ang);
      }
    for (let u = 0; u < len; u++) {
      out[base + u * stride] = re[u]! / Math.sqrt(len);
      out[base + plane + u * stride] = im[u]! / Math.sqrt(len);
    }
  };
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < H; r++) dft(b * 2 * plane + r * W, W, 1);
    for (let c = 0; c < W; c++) dft(b * 2 * plane + c, H, W);
  }
  return out;
}
