// How well the Hutchinson finite-difference estimate of the divergence does on a given network
// (docs/gsure.md, "Choosing eps"): against the exact divergence of the same weights computed in double
// (the reference UNet, central differences coordinate by coordinate with Richardson extrapolation,
// cross-checked against the diagonal of its Jacobian from backward passes), and against the exact
// quadratic form bᵀJb of each probe (backward passes in double), it measures the finite-difference
// error of each probe and the spread of the estimate, for forward and central differences and each eps,
// with the network in float32 on `device`. For small networks only: the reference runs on the CPU in double.
import { native } from '../native.ts';
import { Generator } from '../random.ts';
import { randn, tensor, type Tensor } from '../tensor.ts';
import { resolveConfig, UNet, type UNetConfig, type UNetPreset } from '../unet.ts';
import { gsureProbes, gsureTerms } from './kernels.ts';

export interface DivergenceStudyOptions {
  config: UNetConfig | UNetPreset;
  /** Flat parameters (checkpoint order). */
  params: Float32Array;
  /** One input [C, H, W] and its time step. */
  x: Float32Array;
  t: number;
  /** Probes per setting (default 256). */
  probes?: number;
  eps: number[];
  differences?: ('forward' | 'central')[];
  /** Device of the float32 network (default 'cpu'). */
  device?: string;
  seed?: bigint | number;
}

export interface DivergenceStudyRow {
  difference: 'forward' | 'central';
  eps: number;
  /** mean over probes of (estimate − bᵀJb): the finite-difference bias, and its standard error. */
  fdBias: number;
  fdBiasStdErr: number;
  /** Root mean square of (estimate − bᵀJb): the finite-difference error of one probe. */
  fdRms: number;
  /** mean of the estimates − the exact divergence (Hutchinson and finite-difference error together). */
  error: number;
  /** Standard deviation of one probe's estimate. */
  perProbeStd: number;
}

export interface DivergenceStudy {
  /** Σ_i ∂h_i/∂x_i in double: central differences per coordinate, and the Jacobian diagonal from backward passes. */
  exact: number;
  exactFromBackward: number;
  /** Standard deviation of bᵀJb over the probes: Hutchinson's own spread, whatever eps. */
  quadraticStd: number;
  rows: DivergenceStudyRow[];
}

const stats = (a: Float64Array) => {
  const m = a.reduce((s, x) => s + x, 0) / a.length;
  const v = a.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, a.length - 1);
  return { mean: m, std: Math.sqrt(v), rms: Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length) };
};

export async function divergenceStudy(o: DivergenceStudyOptions): Promise<DivergenceStudy> {
  const config = resolveConfig(o.config);
  const [C, R] = [config.inChannels, config.resolution];
  const per = C * R * R;
  if (config.outChannels !== C) throw new TypeError('divergenceStudy: the network must map inputs to outputs of the same shape');
  if (o.x.length !== per) throw new TypeError(`x: expected ${per} values ([${C}, ${R}, ${R}]), got ${o.x.length}`);
  const K = o.probes ?? 256;
  const params = Float64Array.from(o.params);
  const x = Float64Array.from(o.x);
  const reference = (rows: Float64Array, gout?: Float64Array) => {
    const n = rows.length / per;
    return native.referenceUNet(config, {
      n,
      params,
      x: rows,
      t: new Float64Array(n).fill(o.t),
      gout: gout ?? new Float64Array(rows.length),
    });
  };

  // Exact divergence, 1: central differences at δ and δ/2 per coordinate, Richardson (error O(δ⁴)).
  const delta = 1e-3;
  const shifted = new Float64Array(4 * per * per);
  const steps = [delta, -delta, delta / 2, -delta / 2];
  for (let i = 0; i < per; i++)
    for (let s = 0; s < 4; s++) {
      const row = (4 * i + s) * per;
      shifted.set(x, row);
      shifted[row + i] += steps[s]!;
    }
  const fdOut = (await reference(shifted)).out;
  let exact = 0;
  for (let i = 0; i < per; i++) {
    const at = (s: number) => fdOut[(4 * i + s) * per + i]!;
    const c1 = (at(0) - at(1)) / (2 * delta);
    const c2 = (at(2) - at(3)) / delta;
    exact += (4 * c2 - c1) / 3;
  }
  // Exact divergence, 2: the Jacobian's diagonal, row i of a batch of copies of x with gout = e_i.
  const copies = new Float64Array(per * per);
  const unit = new Float64Array(per * per);
  for (let i = 0; i < per; i++) {
    copies.set(x, i * per);
    unit[i * per + i] = 1;
  }
  const diag = (await reference(copies, unit))['grad.x'];
  let exactFromBackward = 0;
  for (let i = 0; i < per; i++) exactFromBackward += diag[i * per + i]!;

  // The probes (randn's draw of the key: the same b the kernels draw) and their exact bᵀJb.
  const probeGenerator = () => new Generator(o.seed ?? 1, { stream: 0x6469766en });
  const key = probeGenerator().next(K * per);
  const bt = randn([K, C, R, R], { generator: probeGenerator() });
  const b = Float64Array.from(await bt.toArray());
  bt.dispose();
  const repeated = new Float64Array(K * per);
  for (let k = 0; k < K; k++) repeated.set(x, k * per);
  const jtb = (await reference(repeated, b))['grad.x'];
  const quadratic = new Float64Array(K);
  for (let k = 0; k < K; k++) for (let i = 0; i < per; i++) quadratic[k] += b[k * per + i]! * jtb[k * per + i]!;

  // The float32 estimates, through the GSURE kernels: K rows of x, probes = 1 per row, c = v = 1 and
  // κ = n, so the terms kernel's divergence part of row k is bₖᵀ(h(x + eps bₖ) − h(x))/eps (or central).
  const device = o.device ?? 'cpu';
  const net = new UNet(config, { device });
  const owned: Tensor[] = [];
  const own = (t: Tensor) => (owned.push(t), t);
  try {
    net.setParams(o.params);
    const xs = own(tensor(Float32Array.from(repeated), [K, C, R, R], { device }));
    const ts = own(tensor(new Float32Array(K).fill(o.t), [K], { device }));
    const ones = own(tensor(new Float32Array(per).fill(1), [1, C, R, R], { device }));
    const forward = (input: Tensor) => {
      const { out, tape } = net.forward(input, ts);
      tape.release();
      return own(out);
    };
    const h = forward(xs);
    const rows: DivergenceStudyRow[] = [];
    for (const difference of o.differences ?? ['forward', 'central']) {
      for (const eps of o.eps) {
        const central = difference === 'central';
        const { plus, minus } = gsureProbes(xs, { probes: 1, eps, key, central });
        own(plus);
        if (minus) own(minus);
        const terms = gsureTerms({
          h,
          plus: forward(plus),
          minus: minus ? forward(minus) : undefined,
          ybar: h,
          weight: ones,
          variance: ones,
          kappa: new Float64Array(K).fill(per),
          probes: 1,
          eps,
          key,
          gradScale: 1,
        });
        for (const g of [terms.gradH, terms.gradPlus, terms.gradMinus]) g?.dispose();
        const parts = await terms.parts.toArray();
        terms.parts.dispose();
        const est = Float64Array.from({ length: K }, (_, k) => parts[2 * k + 1]!);
        const fdErr = est.map((e, k) => e - quadratic[k]!);
        const s = stats(est);
        const f = stats(fdErr);
        rows.push({
          difference,
          eps,
          fdBias: f.mean,
          fdBiasStdErr: f.std / Math.sqrt(K),
          fdRms: f.rms,
          error: s.mean - exact,
          perProbeStd: s.std,
        });
      }
    }
    return { exact, exactFromBackward, quadraticStd: stats(quadratic).std, rows };
  } finally {
    for (const t of owned) t.dispose();
    net.dispose();
  }
}
