// Which DDIM timestep spacing (docs/guide.md, "Timestep spacing")? With the exact denoiser of a Gaussian
// mixture (lib/score-error/mixture.ts: ε* in double), the only error left is the sampler's own
// discretisation, so the spacing's effect is measured without any training. For each spacing and
// number of steps: deterministic DDIM (η = 0, the library's grid from `timesteps`, the update of
// lib/sample.ts written out in double on the host), sliced Wasserstein distance to fresh mixture
// samples, and the same distance between two fresh sets (the metric's floor). Run:
//   nice -n 10 node --import ./test/support/register-ts.mjs bench/spacing-experiment.ts [--n 2000] [--schedule linear|cosine]
// Cost: n × steps evaluations of ε* (d = 64, 3 components) on the host: under a CPU-minute.
import { GaussianMixture } from '../lib/score-error/mixture.ts';
import { slicedWasserstein } from '../lib/metrics/sliced-wasserstein.ts';
import { seededNormals } from '../lib/metrics/normals.ts';
import { NoiseSchedule, timesteps, type TimestepSpacing } from '../lib/index.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const n = Number(arg('n', '2000'));
const kind = arg('schedule', 'linear') as 'linear' | 'cosine';
const schedule = new NoiseSchedule({ kind });
const ab = schedule.alphaBars;
const mixture = GaussianMixture.random({ shape: [1, 8, 8], components: 3, rank: 2, seed: 5, spread: 0.5, noise: 0.05 });
const d = 64;
const batch = (x: Float64Array) => ({ data: Float32Array.from(x), shape: [n, d] });
const ref = batch(mixture.sample(n, 1, 7).x);
const floor = await slicedWasserstein(ref, batch(mixture.sample(n, 2, 7).x), { seed: 3 });
const cpu0 = process.cpuUsage();

/** DDIM (η = 0) from x_T ~ N(0, I) over `grid` (ascending), the last step landing on the x0 estimate. */
function ddim(grid: number[]): Float64Array {
  let x = seededNormals(n * d, 11n, 0n);
  for (let i = grid.length - 1; i >= 0; i--) {
    const t = grid[i]!;
    const a = ab[t]!;
    const aPrev = i > 0 ? ab[grid[i - 1]!]! : 1;
    const eps = mixture.noised(a).epsStar(x);
    const next = new Float64Array(n * d);
    for (let k = 0; k < n * d; k++) {
      const x0 = (x[k]! - Math.sqrt(1 - a) * eps[k]!) / Math.sqrt(a);
      next[k] = i > 0 ? Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev) * eps[k]! : x0;
    }
    x = next;
  }
  return x;
}

console.log(`${kind} schedule, T = 1000, ${n} samples of d = ${d}; sliced W2 floor (two fresh sets) ${floor.toFixed(4)}`);
console.log('| steps | linspace | leading | trailing |\n|---|---|---|---|');
for (const steps of [5, 10, 25, 50]) {
  const row: string[] = [];
  for (const spacing of ['linspace', 'leading', 'trailing'] as TimestepSpacing[])
    row.push((await slicedWasserstein(batch(ddim(timesteps(1000, steps, spacing))), ref, { seed: 3 })).toFixed(4));
  console.log(`| ${steps} | ${row.join(' | ')} |`);
}
const c = process.cpuUsage(cpu0);
console.log(`${((c.user + c.system) / 1e6).toFixed(1)} CPU-s`);
