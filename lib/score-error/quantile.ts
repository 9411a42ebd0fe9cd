// The (1−δ)-quantile of a sample of errors, with a distribution-free upper confidence bound from the
// order statistics (docs/score-error.md). For M independent draws from a continuous distribution,
// the j-th smallest exceeds the true (1−δ)-quantile q exactly when at most j−1 draws fall below q, so
// P(x_(j) ≥ q) = P(Binomial(M, 1−δ) ≤ j−1): the smallest j that makes this ≥ the confidence is the
// bound. No assumption on the shape of the error distribution is needed.

export interface QuantileEstimate {
  /** Number of values. */
  samples: number;
  /** The order statistic x_(k), k = ⌈(1−δ) M⌉: the point estimate. */
  quantile: number;
  /** x_(j) for the smallest j with P(Bin(M, 1−δ) ≤ j−1) ≥ confidence; Infinity if even j = M is not enough. */
  upperBound: number;
  /** 1-based ranks k and j (j = M + 1 when there is no finite bound). */
  rank: number;
  upperRank: number;
  /** P(x_(j) ≥ q): the bound's exact coverage, at least `confidence`. */
  coverage: number;
}

function checkProbability(name: string, v: number): void {
  if (!(v > 0 && v < 1)) throw new RangeError(`${name}: expected a number in (0, 1), got ${v}`);
}

/** P(X ≤ k) for X ~ Binomial(n, p), k = 0..n, summed from log-space terms (no underflow for large n). */
export function binomialCdf(n: number, p: number): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n: expected a positive integer, got ${n}`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p: expected a probability, got ${p}`);
  const cdf = new Float64Array(n + 1);
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  let logChoose = 0; // log C(n, k), built up term by term
  let acc = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0) logChoose += Math.log(n - k + 1) - Math.log(k);
    // p = 0 or 1: 0 · log 0 is taken as 0
    const term = (k === 0 ? 0 : k * lp) + (k === n ? 0 : (n - k) * lq);
    acc += Math.exp(logChoose + term);
    cdf[k] = Math.min(acc, 1);
  }
  return cdf;
}

/** The (1−δ)-quantile of `values` and its upper confidence bound at `confidence` (default 0.95). */
export function quantileWithBound(values: ArrayLike<number>, delta: number, confidence = 0.95): QuantileEstimate {
  checkProbability('delta', delta);
  checkProbability('confidence', confidence);
  const M = values.length;
  if (M === 0) throw new RangeError('quantile: no values');
  const sorted = Float64Array.from(values);
  for (const v of sorted) if (Number.isNaN(v)) throw new RangeError('quantile: the values contain NaN');
  sorted.sort();
  const rank = Math.max(1, Math.ceil((1 - delta) * M - 1e-9));
  const cdf = binomialCdf(M, 1 - delta);
  let upperRank = M + 1;
  for (let j = 1; j <= M; j++)
    if (cdf[j - 1]! >= confidence) {
      upperRank = j;
      break;
    }
  return {
    samples: M,
    quantile: sorted[rank - 1]!,
    upperBound: upperRank <= M ? sorted[upperRank - 1]! : Infinity,
    rank,
    upperRank,
    coverage: upperRank <= M ? cdf[upperRank - 1]! : 1,
  };
}

/** The fewest samples for which a finite upper bound exists: (1−δ)^M ≤ 1 − confidence. */
export function minimumSamples(delta: number, confidence = 0.95): number {
  checkProbability('delta', delta);
  checkProbability('confidence', confidence);
  return Math.ceil(Math.log(1 - confidence) / Math.log1p(-delta));
}
