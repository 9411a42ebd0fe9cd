// Posterior sampling with an unconditional prior: draws x0 ~ p(x0 | y) for y = A x0 + σ0 z and any
// operator A of lib/corruption, on the DDPM grid of the denoiser's schedule (docs/restore.md).
//   ddrm  (Kawar et al. 2022): the variance-exploding chain x/√ᾱ in A's SVD domain, each coordinate
//         pulled toward ȳ = Σ†Uᵀy as its noise level falls below σ0/s_i (η, η_b).
//   dps   (Chung et al. 2023): an ancestral step, then x ← x − ζ ∇_{x_t} ‖y − A x̂0(x_t)‖ (ζ/‖r‖ on the
//         squared norm, the paper's step size), the gradient by a vector–Jacobian product.
//   pigdm (Song et al. 2023): the likelihood p(y | x_t) ≈ N(A x̂0, r_t² A Aᵀ + σ0² I), r_t² = 1 − ᾱ_t; its
//         score Jᵀ Aᵀ (r_t² A Aᵀ + σ0² I)⁻¹ (y − A x̂0) is diagonal in the SVD domain.
//   mmps  (Rozet et al. 2024): the same likelihood with Tweedie's covariance Cov[x0 | x_t] = c_t J,
//         c_t = (1 − ᾱ_t)/√ᾱ_t, in place of r_t² I: (σ0² I + A Cov Aᵀ) v = y − A x̂0 by a few CG
//         iterations on VJPs, then E[x0 | x_t, y] ≈ x̂0 + Cov Aᵀ v (exact for a Gaussian prior).
// ΠGDM and MMPS turn the score into the posterior's denoised estimate by Tweedie's formula,
// x̂0(x_t, y) = x̂0 + c_t ∇ log p(y | x_t), and step with DDIM (η = 1: ancestral, the default).
import { synchronize } from '../memory.ts';
import { Generator } from '../random.ts';
import { timesteps, IN_FLIGHT } from '../sample.ts';
import { combine } from '../schedule.ts';
import { randn, tensor, type Tensor } from '../tensor.ts';
import { mul, type Degradation } from '../corruption/operator.ts';
import { conjugateGradient } from './cg.ts';
import type { Denoised, PriorDenoiser } from './denoiser.ts';

export type RestoreMethod = 'ddrm' | 'dps' | 'pigdm' | 'mmps';
export const RESTORE_METHODS: readonly RestoreMethod[] = Object.freeze(['ddrm', 'dps', 'pigdm', 'mmps']);

/** Steps of each method when none are given: the papers' settings (DDRM 20, DPS 1000) or the middle of theirs. */
export const DEFAULT_STEPS: Readonly<Record<RestoreMethod, number>> = Object.freeze({ ddrm: 20, dps: 1000, pigdm: 100, mmps: 100 });

export interface PosteriorOptions {
  method: RestoreMethod;
  /** Standard deviation of the measurement noise (≥ 0). */
  sigma0: number;
  /** Steps on the schedule's grid (default DEFAULT_STEPS[method], at most the schedule's T). */
  steps?: number;
  /** DDIM's η for dps, pigdm, mmps (default 1: ancestral); DDRM's η (default 0.85). */
  eta?: number;
  /** DDRM: η_b, the weight of ȳ on coordinates measured more precisely than the current noise (default 1). */
  etaB?: number;
  /** DPS: ζ, the step size on ‖y − A x̂0‖ (default 1, the paper's). */
  zeta?: number;
  /** MMPS: conjugate-gradient iterations per step (default 3). */
  cgIterations?: number;
  /** Clip each (guided) denoised estimate to this range, e.g. [-1, 1] for images (default: none). */
  clip?: readonly [number, number];
  generator?: Generator;
  signal?: AbortSignal;
  onStep?: (done: number, total: number) => void;
}

function checkOptions(o: PosteriorOptions, T: number): Required<Omit<PosteriorOptions, 'clip' | 'generator' | 'signal' | 'onStep'>> {
  if (!RESTORE_METHODS.includes(o.method))
    throw new TypeError(`method: expected one of ${RESTORE_METHODS.join(', ')}, got ${JSON.stringify(o.method)}`);
  const sigma0 = o.sigma0;
  if (typeof sigma0 !== 'number' || !(sigma0 >= 0) || !Number.isFinite(sigma0))
    throw new RangeError(`sigma0: expected a finite noise level >= 0, got ${JSON.stringify(sigma0)}`);
  const steps = o.steps ?? Math.min(DEFAULT_STEPS[o.method], T);
  if (!Number.isInteger(steps) || steps < 1 || steps > T)
    throw new RangeError(`steps: expected an integer in [1, ${T}], got ${JSON.stringify(steps)}`);
  const eta = o.eta ?? (o.method === 'ddrm' ? 0.85 : 1);
  if (!(eta >= 0 && eta <= 1)) throw new RangeError(`eta: expected a number in [0, 1], got ${JSON.stringify(eta)}`);
  const etaB = o.etaB ?? 1;
  if (!(etaB >= 0 && etaB <= 1)) throw new RangeError(`etaB: expected a number in [0, 1], got ${JSON.stringify(etaB)}`);
  const zeta = o.zeta ?? 1;
  if (!(zeta >= 0 && Number.isFinite(zeta))) throw new RangeError(`zeta: expected a finite step size >= 0, got ${JSON.stringify(zeta)}`);
  const cgIterations = o.cgIterations ?? 3;
  if (!Number.isSafeInteger(cgIterations) || cgIterations < 0)
    throw new RangeError(`cgIterations: expected a non-negative integer, got ${JSON.stringify(cgIterations)}`);
  if (o.clip && !(o.clip.length === 2 && o.clip[0] < o.clip[1]))
    throw new RangeError(`clip: expected [low, high] with low < high, got ${JSON.stringify(o.clip)}`);
  return { method: o.method, sigma0, steps, eta, etaB, zeta, cgIterations };
}

/**
 * One posterior sample for each row of the batch: `op` holds the rows' operators (batchSize n), `y`
 * [n, ...op.measurementShape] their measurements, on the denoiser's device. Returns x0 [n, ...signal].
 */
export async function posteriorBatch(denoiser: PriorDenoiser, op: Degradation, y: Tensor, options: PosteriorOptions): Promise<Tensor> {
  const schedule = denoiser.schedule;
  const o = checkOptions(options, schedule.steps);
  if (op.device !== denoiser.device)
    throw new RangeError(`op: expected an operator on ${denoiser.device} (the denoiser's device), got ${op.device}`);
  if (op.signalShape.join() !== denoiser.signalShape.join())
    throw new RangeError(
      `op: signals of shape [${op.signalShape.join(', ')}] do not match the prior's [${denoiser.signalShape.join(', ')}]`,
    );
  const n = op.batchSize;
  const want = [n, ...op.measurementShape];
  if (y.shape.join() !== want.join()) throw new RangeError(`y: expected shape [${want.join(', ')}], got [${y.shape.join(', ')}]`);
  if (y.device !== op.device) throw new RangeError(`y: expected a tensor on ${op.device}, got ${y.device}`);
  const device = op.device;
  const shape = [n, ...op.signalShape];
  const generator = options.generator ?? new Generator(0);
  const same = (v: number) => new Array<number>(n).fill(v);
  const ab = schedule.alphaBars;
  const grid = timesteps(schedule.steps, o.steps);
  const owned: Tensor[] = [];
  const keep = <T extends Tensor | null>(t: T): T => (t && owned.push(t), t);
  const clip = (t: Tensor): Tensor => {
    if (!options.clip) return t;
    const c = t.clamp(options.clip[0], options.clip[1]);
    t.dispose();
    return c;
  };

  // Placeholders of y (dropped pixels, unsampled lines) are zeroed, whatever the caller left there.
  const mask = keep(op.measurementMask());
  const yy = keep(mask ? mul(y, mask) : y.clone());
  // The SVD domain: singular values and ȳ, for DDRM and ΠGDM.
  const svd = o.method === 'ddrm' || o.method === 'pigdm';
  const s = svd ? await keep(op.singularValues()).toArray() : null;
  const ybar = svd ? keep(op.toSvd(yy)) : null;

  /** r = y − A x̂0 on the device. */
  const residual = (x0: Tensor): Tensor => {
    const ax = op.apply(x0);
    const r = combine([
      [yy, same(1)],
      [ax, same(-1)],
    ]);
    ax.dispose();
    return r;
  };
  /** DDIM from x_t at step t to `prev` (−1: the end) given the denoised estimate x0. */
  const ddim = (x: Tensor, x0: Tensor, t: number, prev: number): Tensor => {
    if (prev < 0) return x0.clone();
    const abT = ab[t]!,
      abP = ab[prev]!;
    const sigma = o.eta * Math.sqrt(((1 - abP) / (1 - abT)) * (1 - abT / abP));
    const dir = Math.sqrt(Math.max(0, 1 - abP - sigma * sigma));
    // eps = (x_t − √ᾱ x0)/√(1 − ᾱ), folded into the coefficients of x_t and x0.
    const cx = dir / Math.sqrt(1 - abT);
    const c0 = Math.sqrt(abP) - (dir * Math.sqrt(abT)) / Math.sqrt(1 - abT);
    if (sigma === 0)
      return combine([
        [x, same(cx)],
        [x0, same(c0)],
      ]);
    const z = randn(shape, { generator, device });
    const out = combine([
      [x, same(cx)],
      [x0, same(c0)],
      [z, same(sigma)],
    ]);
    z.dispose();
    return out;
  };

  /** E[x0 | x_t, y] ≈ x̂0 + c_t g for the method's likelihood score g; takes ownership of nothing. */
  const guided = async (d: Denoised, t: number): Promise<Tensor> => {
    const abT = ab[t]!;
    const c = (1 - abT) / Math.sqrt(abT);
    let h: Tensor; // Aᵀ(...)⁻¹(y − A x̂0), in signal space
    if (o.method === 'pigdm') {
      const r2 = 1 - abT;
      const w = Float32Array.from(s!, (si) => (si > 0 ? (si * si) / (r2 * si * si + o.sigma0 * o.sigma0) : 0));
      const wt = tensor(w, shape, { device });
      const xbar = op.vt(d.x0);
      const diff = combine([
        [ybar!, same(1)],
        [xbar, same(-1)],
      ]);
      const weighted = mul(diff, wt);
      h = op.v(weighted);
      for (const u of [wt, xbar, diff, weighted]) u.dispose();
    } else {
      const r = residual(d.x0);
      const rhs = await r.toArray();
      r.dispose();
      const msh = [n, ...op.measurementShape];
      const v = await conjugateGradient(
        async (p) => {
          const pt = tensor(p, msh, { device });
          const u = op.adjoint(pt);
          const g = await d.vjp(u);
          const ag = op.apply(g);
          const out = combine([
            [pt, same(o.sigma0 * o.sigma0)],
            [ag, same(c)],
          ]);
          for (const q of [pt, u, g, ag]) q.dispose();
          const host = await out.toArray();
          out.dispose();
          return host;
        },
        rhs,
        n,
        o.cgIterations,
      );
      const vt = tensor(Float32Array.from(v), msh, { device });
      h = op.adjoint(vt);
      vt.dispose();
    }
    const g = await d.vjp(h);
    h.dispose();
    const out = combine([
      [d.x0, same(1)],
      [g, same(c)],
    ]);
    g.dispose();
    return clip(out);
  };

  let x: Tensor | null = null;
  try {
    x = o.method === 'ddrm' ? ddrmStart() : randn(shape, { generator, device });
    for (let i = grid.length - 1; i >= 0; i--) {
      options.signal?.throwIfAborted();
      const t = grid[i]!;
      const prev = i > 0 ? grid[i - 1]! : -1;
      let next: Tensor;
      if (o.method === 'ddrm') next = await ddrmStep(x, t, prev);
      else if (o.method === 'dps') next = await dpsStep(x, t, prev);
      else {
        const d = await denoiser.denoise(x, t, { vjp: true });
        try {
          const x0 = await guided(d, t);
          next = ddim(x, x0, t, prev);
          x0.dispose();
        } finally {
          d.dispose();
        }
      }
      x.dispose();
      x = next;
      options.onStep?.(grid.length - i, grid.length);
      if ((grid.length - i) % IN_FLIGHT === 0) await synchronize(device);
    }
    await synchronize(device);
    const done = x;
    x = null;
    return done;
  } finally {
    x?.dispose();
    for (const t of owned) t.dispose();
  }

  async function dpsStep(x: Tensor, t: number, prev: number): Promise<Tensor> {
    const d = await denoiser.denoise(x, t, { vjp: true });
    try {
      const r = residual(d.x0);
      const host = await r.toArray();
      const m = host.length / n;
      // ∇_{x_t} ‖r‖ = −Jᵀ Aᵀ r / ‖r‖, so x ← x + ζ Jᵀ Aᵀ r / ‖r‖ (per sample; 0 where r = 0).
      const scale = Array.from({ length: n }, (_, b) => {
        let q = 0;
        for (let j = b * m; j < (b + 1) * m; j++) q += host[j]! * host[j]!;
        return q > 0 ? o.zeta / Math.sqrt(q) : 0;
      });
      const atr = op.adjoint(r);
      r.dispose();
      const g = await d.vjp(atr);
      atr.dispose();
      const x0 = clip(d.x0.clone());
      const step = ddim(x, x0, t, prev);
      x0.dispose();
      const out = combine([
        [step, same(1)],
        [g, scale],
      ]);
      step.dispose();
      g.dispose();
      return out;
    } finally {
      d.dispose();
    }
  }

  // DDRM keeps x_t (VP) and works on x̄ = Vᵀ(x_t / √ᾱ), whose noise level is σ_t = √((1 − ᾱ)/ᾱ).
  function ddrmStart(): Tensor {
    const T = grid[grid.length - 1]!;
    const sT = Math.sqrt((1 - ab[T]!) / ab[T]!);
    // Coordinates measured more precisely than σ_T start at ȳ plus the missing noise; the rest at N(0, σ_T²).
    const cy = new Float32Array(s!.length),
      cz = new Float32Array(s!.length);
    for (let j = 0; j < s!.length; j++) {
      const sj = s![j]!;
      const level = sj > 0 ? o.sigma0 / sj : Infinity;
      if (level <= sT) [cy[j], cz[j]] = [1, Math.sqrt(sT * sT - level * level)];
      else [cy[j], cz[j]] = [0, sT];
    }
    const z = randn(shape, { generator, device });
    const bar = affine([
      [ybar!, cy],
      [z, cz],
    ]);
    z.dispose();
    const out = op.v(bar);
    bar.dispose();
    const vp = out.scale(Math.sqrt(ab[T]!));
    out.dispose();
    return vp;
  }

  async function ddrmStep(x: Tensor, t: number, prev: number): Promise<Tensor> {
    const d = await denoiser.denoise(x, t);
    const x0 = clip(d.x0.clone());
    d.dispose();
    const abT = ab[t]!,
      abP = prev >= 0 ? ab[prev]! : 1;
    const sT = Math.sqrt((1 - abT) / abT),
      sP = Math.sqrt((1 - abP) / abP);
    const len = s!.length;
    const c0 = new Float32Array(len),
      cx = new Float32Array(len),
      cy = new Float32Array(len),
      cz = new Float32Array(len);
    const keepNoise = Math.sqrt(1 - o.eta * o.eta) * sP;
    for (let j = 0; j < len; j++) {
      const sj = s![j]!;
      if (sj === 0) {
        // Unobserved: DDIM in the VE chain.
        cx[j] = keepNoise / sT;
        c0[j] = 1 - cx[j]!;
        cz[j] = o.eta * sP;
        continue;
      }
      const level = o.sigma0 / sj;
      if (sP < level) {
        // Measured less precisely than the next noise level: step toward ȳ by the share of noise left.
        cy[j] = keepNoise / level;
        c0[j] = 1 - cy[j]!;
        cz[j] = o.eta * sP;
      } else {
        cy[j] = o.etaB;
        c0[j] = 1 - o.etaB;
        cz[j] = Math.sqrt(Math.max(0, sP * sP - o.etaB * o.etaB * level * level));
      }
    }
    const xs = x.scale(1 / Math.sqrt(abT));
    const xbar = op.vt(xs);
    const x0bar = op.vt(x0);
    xs.dispose();
    x0.dispose();
    const z = prev >= 0 ? randn(shape, { generator, device }) : null;
    const bar = affine([[x0bar, c0], [xbar, cx], [ybar!, cy], ...(z ? [[z, cz] as [Tensor, Float32Array]] : [])]);
    for (const u of [xbar, x0bar, z]) u?.dispose();
    const out = op.v(bar);
    bar.dispose();
    const vp = out.scale(Math.sqrt(abP));
    out.dispose();
    return vp;
  }

  /** Σ_k c_k ⊙ x_k with per-coordinate coefficients from the host. */
  function affine(terms: [Tensor, Float32Array][]): Tensor {
    let acc: Tensor | null = null;
    for (const [t, c] of terms) {
      if (c.every((v) => v === 0)) continue;
      const ct = tensor(c, shape, { device });
      const term = mul(t, ct);
      ct.dispose();
      if (acc === null) acc = term;
      else {
        const sum: Tensor = acc.add(term);
        acc.dispose();
        term.dispose();
        acc = sum;
      }
    }
    return acc ?? tensor(new Float32Array(s!.length), shape, { device });
  }
}
