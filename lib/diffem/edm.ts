// EDM preconditioning on the variance-exploding process x̃ = x + σ n (Karras et al. 2022), the
// parameterisation DiffEM's conditional denoiser uses (docs/diffem.md):
//   D(x̃, σ) = c_skip(σ) x̃ + c_out(σ) F(c_in(σ) x̃, c_noise(σ)),
//   c_skip = σ_d² / (σ² + σ_d²), c_out = σ σ_d / √(σ² + σ_d²), c_in = 1 / √(σ² + σ_d²).
// With these, the network's input and its regression target F* = (x − c_skip x̃) / c_out both have unit
// variance at every σ, and EDM's loss weight λ(σ) = 1 / c_out² turns λ‖D − x‖² into the plain ‖F − F*‖².
// Our UNet embeds a time t on the DDPM scale (0 .. 999), so c_noise maps log σ affinely onto it:
// σ_min → 0, σ_max → 1000 (σ outside the range extrapolates; the sinusoidal embedding is defined everywhere).

export interface EdmConfig {
  /** Standard deviation of the data (default 0.5: images in [-1, 1]). */
  sigmaData?: number;
  /** Noise range of sampling and of the time embedding (defaults 0.002 and 80). */
  sigmaMin?: number;
  sigmaMax?: number;
  /** Training noise levels: ln σ ~ N(pMean, pStd²) (defaults −1.2 and 1.2). */
  pMean?: number;
  pStd?: number;
  /** Exponent of the sampling grid (default 7). */
  rho?: number;
}

export type ResolvedEdm = Readonly<Required<EdmConfig>> & { kind: 'edm' };

export function resolveEdm(config: EdmConfig = {}): ResolvedEdm {
  const c = {
    kind: 'edm' as const,
    sigmaData: config.sigmaData ?? 0.5,
    sigmaMin: config.sigmaMin ?? 0.002,
    sigmaMax: config.sigmaMax ?? 80,
    pMean: config.pMean ?? -1.2,
    pStd: config.pStd ?? 1.2,
    rho: config.rho ?? 7,
  };
  for (const k of ['sigmaData', 'sigmaMin', 'sigmaMax', 'pStd', 'rho'] as const)
    if (!(c[k] > 0 && Number.isFinite(c[k]))) throw new RangeError(`edm.${k}: expected a positive number, got ${c[k]}`);
  if (!Number.isFinite(c.pMean)) throw new RangeError(`edm.pMean: expected a number, got ${c.pMean}`);
  if (!(c.sigmaMin < c.sigmaMax)) throw new RangeError(`edm: sigmaMin (${c.sigmaMin}) must be below sigmaMax (${c.sigmaMax})`);
  return Object.freeze(c);
}

export interface Preconditioning {
  cSkip: number;
  cOut: number;
  cIn: number;
  /** The UNet's time input for this σ. */
  cNoise: number;
}

export function precondition(edm: ResolvedEdm, sigma: number): Preconditioning {
  if (!(sigma > 0 && Number.isFinite(sigma))) throw new RangeError(`sigma: expected a positive number, got ${sigma}`);
  const sd2 = edm.sigmaData * edm.sigmaData;
  const s2 = sigma * sigma;
  return {
    cSkip: sd2 / (s2 + sd2),
    cOut: (sigma * edm.sigmaData) / Math.sqrt(s2 + sd2),
    cIn: 1 / Math.sqrt(s2 + sd2),
    cNoise: (1000 * Math.log(sigma / edm.sigmaMin)) / Math.log(edm.sigmaMax / edm.sigmaMin),
  };
}

/** The sampling grid σ_0 = σ_max > … > σ_{steps−1} = σ_min (Karras et al., eq. 5), without the final 0. */
export function karrasSigmas(edm: ResolvedEdm, steps: number): Float64Array {
  if (!Number.isInteger(steps) || steps < 2) throw new RangeError(`steps: expected an integer >= 2, got ${steps}`);
  const a = edm.sigmaMax ** (1 / edm.rho);
  const b = edm.sigmaMin ** (1 / edm.rho);
  return Float64Array.from({ length: steps }, (_, i) => (a + (i / (steps - 1)) * (b - a)) ** edm.rho);
}
