// Conjugate gradients for a batch of independent symmetric positive (semi-)definite systems K_b v_b = r_b,
// one per sample, where only the product with all K_b at once is available (MMPS: each product is a
// vector–Jacobian product through the network). The vectors are small (one measurement per sample) and
// live on the host in double; each iteration costs one product.

/**
 * Runs `iterations` CG steps from v = 0 on each of the n systems (rows of `rhs`, m values each) and
 * returns v. A system whose residual vanishes (or whose curvature pᵀKp is not positive, which exact
 * arithmetic on a semi-definite K only reaches once the residual is 0) stops there.
 */
export async function conjugateGradient(
  matvec: (p: Float32Array) => Promise<Float32Array>,
  rhs: ArrayLike<number>,
  n: number,
  iterations: number,
): Promise<Float64Array> {
  if (!Number.isSafeInteger(iterations) || iterations < 0)
    throw new RangeError(`cgIterations: expected a non-negative integer, got ${iterations}`);
  if (!Number.isSafeInteger(n) || n < 1 || rhs.length % n)
    throw new RangeError(`conjugateGradient: ${rhs.length} right-hand side values do not split into ${n} systems`);
  const m = rhs.length / n;
  const v = new Float64Array(rhs.length);
  const r = Float64Array.from(rhs);
  const p = Float64Array.from(rhs);
  const rr = new Float64Array(n);
  const active = new Uint8Array(n).fill(1);
  for (let b = 0; b < n; b++) rr[b] = dot(r, r, b * m, m);
  for (let it = 0; it < iterations; it++) {
    for (let b = 0; b < n; b++) if (!(rr[b]! > 0)) active[b] = 0;
    if (!active.some((a) => a)) break;
    const kp = await matvec(Float32Array.from(p));
    for (let b = 0; b < n; b++) {
      if (!active[b]) continue;
      const o = b * m;
      const curv = dot(p, kp, o, m);
      if (!(curv > 0)) {
        active[b] = 0;
        continue;
      }
      const alpha = rr[b]! / curv;
      for (let j = o; j < o + m; j++) {
        v[j]! += alpha * p[j]!;
        r[j]! -= alpha * kp[j]!;
      }
      const next = dot(r, r, o, m);
      const beta = next / rr[b]!;
      rr[b] = next;
      for (let j = o; j < o + m; j++) p[j] = r[j]! + beta * p[j]!;
    }
  }
  return v;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>, offset: number, m: number): number {
  let s = 0;
  for (let j = offset; j < offset + m; j++) s += a[j]! * b[j]!;
  return s;
}
