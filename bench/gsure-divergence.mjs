// The divergence estimator study of docs/gsure.md: bias and spread of the Hutchinson finite-difference
// estimate (forward vs central, several eps) against the exact divergence in double, on a small UNet
// with random weights, at a few noise levels. Prints the table docs/gsure.md quotes.
//   node --import ./test/support/register-ts.mjs bench/gsure-divergence.mjs [--device cpu|cuda:0] [--probes 256]
import { divergenceStudy } from '../lib/gsure/divergence.ts';
import { NoiseSchedule } from '../lib/schedule.ts';
import { unetLayout } from '../lib/unet.ts';
import { native } from '../lib/native.ts';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const device = arg('device', 'cpu');
const probes = Number(arg('probes', 256));
const config = { inChannels: 1, channels: 16, mult: [1, 1], resBlocks: 1, attnResolutions: [4], resolution: 8, zeroInit: false };
const { paramCount } = unetLayout(config);
const init = native.empty('cpu', [paramCount]);
native.unetInit(config, 7, init);
const params = await native.read(init);
init.dispose();

// x_t = √ᾱ x0 + √(1 − ᾱ) z for a smooth blob x0 (a plausible image) and fixed z.
const schedule = new NoiseSchedule({ kind: 'linear' });
let s = 5;
const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
const x0 = Float64Array.from({ length: 64 }, (_, k) => 2 * Math.exp(-(((k % 8) - 3.2) ** 2 + (Math.floor(k / 8) - 4.1) ** 2) / 4) - 1);
const z = Float64Array.from({ length: 64 }, gauss);
const eps = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4];

console.log(
  `Hutchinson divergence estimate, float32 UNet on ${device}, ${probes} probes per row; UNet ${JSON.stringify(config)} (random weights)`,
);
for (const t of [50, 500, 950]) {
  const ab = schedule.alphaBars[t];
  const x = Float32Array.from(x0, (v, k) => Math.sqrt(ab) * v + Math.sqrt(1 - ab) * z[k]);
  const r = await divergenceStudy({ config, params, x, t, probes, eps, device, seed: 3 });
  console.log(
    `\nt = ${t}: exact divergence ${r.exact.toFixed(6)} (double, central differences per coordinate; ` +
      `from the backward diagonal ${r.exactFromBackward.toFixed(6)}); std of bᵀJb over probes ${r.quadraticStd.toFixed(4)}`,
  );
  console.log('| difference | eps | FD bias (mean est − bᵀJb) | ± s.e. | FD rms error per probe | mean est − exact | std per probe |');
  console.log('|---|---|---|---|---|---|---|');
  for (const row of r.rows)
    console.log(
      `| ${row.difference} | ${row.eps.toExponential(0)} | ${row.fdBias.toExponential(2)} | ${row.fdBiasStdErr.toExponential(1)} | ${row.fdRms.toExponential(2)} | ${row.error.toExponential(2)} | ${row.perProbeStd.toFixed(4)} |`,
    );
}
