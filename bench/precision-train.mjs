// The precision policy on the CPU (docs/precision.md): a tiny16 training run with the convolutions'
// operands rounded to BF16 (and TF32) as the tensor cores round them, against the same run in FP32:
// same weights, data, noise and batches. Prints the loss curves and their largest relative
// difference (raw, and over a moving window of 10 steps), the band that test/unet/precision.test.ts
// asserts for its few steps. CPU time scales linearly with steps x batch (tiny16: about 0.2 s per
// step at batch 16 on one core of the dev machine).
//   node --import ./test/support/register-ts.mjs bench/precision-train.mjs [--steps 200] [--batch 16]
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const steps = arg('steps', 200),
  batch = arg('batch', 16);
const { NoiseSchedule, train, UNet } = await import('../lib/index.ts');

// Smooth blobs on 16x16, values in [-1, 1] (deterministic).
function blobs16(n, seed = 1) {
  const images = new Float32Array(n * 256);
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < n; i++) {
    const cx = 2 + 12 * rnd(),
      cy = 2 + 12 * rnd(),
      r = 2 + 4 * rnd();
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < 16; x++) images[i * 256 + y * 16 + x] = 2 * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / r) - 1;
  }
  return { images, shape: [n, 1, 16, 16] };
}

const data = blobs16(512);
async function run(precision) {
  const model = new UNet('tiny16', { device: 'cpu', seed: 5, precision });
  const t0 = process.cpuUsage(),
    w0 = performance.now();
  const r = await train({
    model,
    data,
    batchSize: batch,
    steps,
    optimizer: { lr: 1e-3 },
    schedule: new NoiseSchedule({ kind: 'linear' }),
    seed: 11,
  });
  const cpu = process.cpuUsage(t0);
  model.dispose?.();
  return { losses: r.losses.map((l) => l.loss), wall: (performance.now() - w0) / 1e3, cpu: (cpu.user + cpu.system) / 1e6 };
}

const smooth = (a, k = 10) =>
  a.map((_, i) => {
    const s = a.slice(Math.max(0, i - k + 1), i + 1);
    return s.reduce((x, y) => x + y, 0) / s.length;
  });
const runs = {};
for (const p of ['fp32', 'bf16', 'tf32']) runs[p] = await run(p);
const f = runs.fp32.losses,
  fs = smooth(f);
console.log(`tiny16 on the CPU, batch ${batch}, ${steps} steps`);
for (const p of ['fp32', 'bf16', 'tf32'])
  console.log(
    `${p}: wall ${runs[p].wall.toFixed(1)} s, cpu ${runs[p].cpu.toFixed(1)} s; loss first ${runs[p].losses[0].toFixed(4)}, last 10 mean ${smooth(runs[p].losses).at(-1).toFixed(4)}`,
  );
for (const p of ['bf16', 'tf32']) {
  const l = runs[p].losses,
    ls = smooth(l);
  const raw = Math.max(...l.map((v, i) => Math.abs(v - f[i]) / f[i]));
  const sm = Math.max(...ls.map((v, i) => Math.abs(v - fs[i]) / fs[i]));
  const first = Math.max(...l.slice(0, 5).map((v, i) => Math.abs(v - f[i]) / f[i]));
  console.log(
    `${p} vs fp32: largest relative loss difference: first 5 steps ${first.toExponential(2)}, any step ${raw.toExponential(2)}, 10-step mean ${sm.toExponential(2)}`,
  );
}
const every = Math.max(1, Math.floor(steps / 20));
console.log('step  fp32     bf16     tf32');
for (let i = 0; i < steps; i += every)
  console.log(`${String(i).padStart(4)}  ${f[i].toFixed(4)}  ${runs.bf16.losses[i].toFixed(4)}  ${runs.tf32.losses[i].toFixed(4)}`);
