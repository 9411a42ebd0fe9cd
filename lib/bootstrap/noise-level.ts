// Noise-level matching for the view denoisers (docs/bootstrap.md). The r×r-pooled view of
// x_t = √ᾱ x0 + √(1−ᾱ) ε is √ᾱ A x0 + (√(1−ᾱ)/r) ε' (the mean of r² independent unit normals has
// standard deviation 1/r), so its signal-to-noise ratio is r² ᾱ/(1−ᾱ). A view model trained with
// ordinary DSM on pooled data expects √ᾱ' z0 + √(1−ᾱ') ε; scaling the view by c = √ᾱ'/√ᾱ gives exactly
// that when ᾱ'/(1−ᾱ') = r² ᾱ/(1−ᾱ). The time t' with that ᾱ' is found by interpolating the schedule's
// log-SNR linearly between its integer steps (the UNet's sinusoidal time embedding takes a float t).
import type { NoiseSchedule } from '../schedule.ts';

const logSnr = (ab: number) => Math.log(ab) - Math.log1p(-ab);

/**
 * ᾱ at a continuous time t in [0, T − 1]: the schedule's value at integer t, and between two steps the
 * ᾱ whose log-SNR is interpolated linearly (the inverse of timeAtLogSnr).
 */
export function alphaBarAt(schedule: NoiseSchedule, t: number): number {
  const T = schedule.steps;
  if (!(t >= 0 && t <= T - 1)) throw new RangeError(`t: expected a time in [0, ${T - 1}], got ${t}`);
  const k = Math.min(Math.floor(t), T - 2);
  const f = t - k;
  const ab = schedule.alphaBars;
  if (f === 0) return ab[k]!;
  if (f === 1) return ab[k + 1]!;
  const l = (1 - f) * logSnr(ab[k]!) + f * logSnr(ab[k + 1]!);
  return 1 / (1 + Math.exp(-l));
}

/**
 * The continuous time whose log-SNR is `target`: linear in log-SNR between the two steps that bracket
 * it. Beyond the schedule's range it is clamped (to 0 when less noisy than step 0, to T − 1 when
 * noisier than the last step), and `clamped` says so.
 */
export function timeAtLogSnr(schedule: NoiseSchedule, target: number): { time: number; clamped: boolean } {
  const ab = schedule.alphaBars;
  const T = schedule.steps;
  if (target >= logSnr(ab[0]!)) return { time: 0, clamped: target > logSnr(ab[0]!) };
  if (target <= logSnr(ab[T - 1]!)) return { time: T - 1, clamped: target < logSnr(ab[T - 1]!) };
  // log-SNR decreases with t: find the last step still above the target.
  let lo = 0;
  let hi = T - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (logSnr(ab[mid]!) >= target) lo = mid;
    else hi = mid;
  }
  const a = logSnr(ab[lo]!);
  const b = logSnr(ab[hi]!);
  return { time: lo + (a - target) / (a - b), clamped: false };
}

export interface MatchedLevel {
  /** The time t' to give the view model. */
  time: number;
  /** ᾱ' at t' (what the model assumes; use it to convert the model's prediction to x0). */
  alphaBar: number;
  /** c = √ᾱ'/√ᾱ: the view of x_t times c has the model's signal and noise levels. */
  scale: number;
  /** True when r² ᾱ/(1−ᾱ) is beyond the schedule's least noisy step: t' = 0, and the view then carries
   * less noise than the model assumes (only at the very last sampling steps, where ᾱ ≈ 1). */
  clamped: boolean;
}

/** The time, ᾱ' and input scale at which a model of the r×r-pooled view denoises the view of x_t at ᾱ. */
export function matchPooledLevel(schedule: NoiseSchedule, alphaBar: number, r: number): MatchedLevel {
  if (!(alphaBar > 0 && alphaBar < 1)) throw new RangeError(`alphaBar: expected a number in (0, 1), got ${alphaBar}`);
  if (!(r >= 1)) throw new RangeError(`r: expected a factor >= 1, got ${r}`);
  const target = logSnr(alphaBar) + 2 * Math.log(r);
  const { time, clamped } = timeAtLogSnr(schedule, target);
  const ab = clamped ? alphaBarAt(schedule, time) : 1 / (1 + Math.exp(-target));
  return { time, alphaBar: ab, scale: Math.sqrt(ab / alphaBar), clamped };
}
