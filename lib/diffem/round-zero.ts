// Round 0 of DiffEM for any operator of lib/corruption (docs/diffem.md): a Gaussian prior fitted by EM in
// the operator's SVD domain, and one posterior sample per observation from it. With A = U Σ Vᵀ, the
// coordinates x̄ = Vᵀx that sample i observes (s_ij > 0) are measured as ȳ_ij = (Σ†Uᵀy_i)_j = x̄_ij + (σ0/s_ij) z,
// a masked noisy observation of x̄ exactly as fitGaussianPrior takes it. For masks V = I and this is the
// pixel-domain fit of the first DiffEM version; for Fourier it is a fit in k-space; for block averaging
// the observed coordinates are the block means. The fitted law of x̄ is a law of x = V x̄.
//
// A coordinate that no observation sees has an undetermined mean and variance: the fit refuses it,
// unless the caller opts in to `unobserved: 'zero'`, which keeps it at 0 (what A⁺y has there). Block
// averaging by one fixed k never observes its null space (the detail within blocks): DiffEM cannot learn
// it from such data, whatever the number of rounds; its reconstructions there come from round 0 (or a
// warm start) and the conditional model's guesses.
import { tensor } from '../tensor.ts';
import type { MeasurementSet } from '../corruption/dataset.ts';
import { fitGaussianPrior, posteriorSample } from './gaussian-prior.ts';

export interface RoundZeroOptions {
  /** Rank of the covariance factor (clamped to the number of observed coordinates). */
  rank: number;
  /** EM iterations of the fit (default 30). */
  iterations?: number;
  seed?: bigint | number;
  /** 'refuse' (default): a never-observed coordinate is an error. 'zero': keep it at 0 (the minimum-norm A⁺y value). */
  unobserved?: 'refuse' | 'zero';
  onIteration?: (it: number, logLikelihood: number) => void;
  signal?: AbortSignal;
}

export interface RoundZero {
  /** [N, ...signalShape]: one posterior sample per observation. */
  x: Float32Array;
  /** SVD coordinates no observation sees (kept at 0), and the total. */
  unobserved: number;
  coordinates: number;
}

/** Round-0 reconstructions of every observation of `set` from a Gaussian prior fitted in the SVD domain. */
export async function gaussianRoundZero(set: MeasurementSet, o: RoundZeroOptions): Promise<RoundZero> {
  const N = set.count;
  const d = set.signalShape.reduce((a, b) => a * b, 1);
  using op = set.operator({ device: 'cpu' });
  using y = tensor(set.measurements, [N, ...set.measurementShape], { device: 'cpu' });
  using ybarT = op.toSvd(y);
  using sT = op.singularValues();
  const [ybar, s] = [await ybarT.toArray(), await sT.toArray()];
  // The observed coordinates, and the one noise level of their measurement (σ0 / s).
  const seen = new Uint8Array(d);
  let sv = 0;
  for (let i = 0; i < N * d; i++) {
    const v = s[i]!;
    if (v <= 0) continue;
    seen[i % d] = 1;
    if (sv === 0) sv = v;
    else if (Math.abs(v - sv) > 1e-6 * sv)
      throw new RangeError(
        `diffem round 0: the ${set.kind} operator has unequal singular values (${sv} and ${v}); the Gaussian fit takes one noise level σ0/s`,
      );
  }
  const cols: number[] = [];
  for (let j = 0; j < d; j++) if (seen[j]) cols.push(j);
  const unobserved = d - cols.length;
  if (cols.length === 0)
    throw new RangeError(`diffem round 0: no observation sees any coordinate of the signal (every singular value is 0)`);
  if (unobserved > 0 && (o.unobserved ?? 'refuse') === 'refuse') {
    const first = seen.indexOf(0);
    throw new RangeError(
      `diffem round 0: coordinate ${first} is never observed in the ${N} samples (${unobserved} of ${d} coordinates of the ${set.kind} operator's SVD domain are not): ` +
        'its mean and variance are undetermined and DiffEM cannot learn it from these data. Use more samples or operators that vary per sample (random masks, random k-space lines), ' +
        "or accept a model of the observed subspace only (unobserved: 'zero', CLI --unobserved zero), which keeps those coordinates at 0 as A⁺y does",
    );
  }
  const dd = cols.length;
  const yy = new Float32Array(N * dd);
  const mm = new Uint8Array(N * dd);
  for (let i = 0; i < N; i++)
    for (let c = 0; c < dd; c++) {
      const q = i * d + cols[c]!;
      if (s[q]! > 0) {
        yy[i * dd + c] = ybar[q]!;
        mm[i * dd + c] = 1;
      }
    }
  const sigmaY = set.sigma0 / sv;
  const seed = o.seed ?? 0;
  const prior = await fitGaussianPrior(yy, mm, N, dd, {
    rank: Math.min(o.rank, dd),
    iterations: o.iterations ?? 30,
    sigmaY,
    seed,
    onIteration: o.onIteration,
    signal: o.signal,
  });
  const post = posteriorSample(prior, yy, mm, N, dd, sigmaY, seed);
  const xbar = new Float32Array(N * d);
  for (let i = 0; i < N; i++) for (let c = 0; c < dd; c++) xbar[i * d + cols[c]!] = post[i * dd + c]!;
  using xbarT = tensor(xbar, [N, ...set.signalShape], { device: 'cpu' });
  using x = op.v(xbarT);
  return { x: await x.toArray(), unobserved, coordinates: d };
}
