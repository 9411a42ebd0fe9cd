// The compute-sanitizer driver of GPU first light (bench/first-light/run.sh): one process that launches
// every kernel once on small shapes, so memcheck, racecheck and synccheck see all of them without
// vitest's forked workers. Driven by the golden table (test/golden/table.ts): every op in it runs, so a
// new op is covered as soon as it has a golden entry. Per op, the case with the most elements up to
// --max-elements (else the smallest): tails and vector paths at sizes the sanitizers get through
// quickly. Each output is compared as the golden test does (on a GPU with the CPU backend, on the CPU
// with the double reference) and its guard bytes checked. Then the whole UNet forward and backward,
// one AdamW step and a 3-step DDIM sample, through the library. Each result is appended to --out as
// one JSON line when it ends (a killed run keeps what it did); stdout names each op before it runs, so
// a sanitizer report lands right after the op that caused it.
//   node --import ./test/support/register-ts.mjs bench/first-light/kernels.mjs [--device cuda:0] [--out FILE]
//        [--max-elements 65536] [--preset tiny16]
// Exit status: 0 when every case matched, 1 otherwise.
import { appendFileSync, writeFileSync } from 'node:fs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
// conv2d's weight gradient in groups of slices (native/cuda/conv2d.cu): a small cap, so the grouped
// path runs too (the extra conv case below has 4 slices, 2 per group). Read by the addon at its first
// conv backward; an explicit setting is kept.
process.env.KINTSUGI_CONV2D_SCRATCH_BYTES ??= String(2 * 8 * 8 * 9 * 4);

const device = arg('device', process.env.KINTSUGI_DEVICE ?? 'cuda:0');
const outFile = arg('out', null);
const maxElements = Number(arg('max-elements', 65536));
const preset = arg('preset', 'tiny16');

const { native } = await import('../../lib/native.ts');
const { goldenTable } = await import('../../test/golden/table.ts');
const { nmse } = await import('../../test/helpers.ts');
const kintsugi = await import('../../lib/index.ts');

if (outFile) writeFileSync(outFile, '');
const emit = (row) => {
  if (outFile) appendFileSync(outFile, JSON.stringify(row) + '\n');
};
const numel = (shape) => shape.reduce((a, b) => a * b, 1);
let failed = 0;
let count = 0;

async function attempt(name, shape, fn) {
  console.log(`kernels: ${name} ${JSON.stringify(shape)}`);
  const t0 = performance.now();
  let row;
  try {
    row = { name, shape, ...(await fn()) };
  } catch (e) {
    row = { name, shape, ok: false, error: String(e?.message ?? e).split('\n')[0] };
  }
  row.ms = Math.round(performance.now() - t0);
  if (!row.ok) {
    failed++;
    console.log(`kernels: FAILED ${name}: ${row.error}`);
  }
  count++;
  emit(row);
}

async function runOn(c, where) {
  const inputs = c.inputs(c.shape);
  const shapes = c.inputShapes?.(c.shape);
  const handles = inputs.map((data, i) => {
    const t = native.empty(where, shapes?.[i] ?? c.shape);
    native.write(t, data);
    return t;
  });
  const out = native.empty(where, c.outShape?.(c.shape) ?? c.shape, true);
  try {
    c.run(handles, out);
    const [values, guard] = await Promise.all([native.read(out), native.checkGuard(out)]);
    return { values, guard };
  } finally {
    for (const h of [...handles, out]) h.dispose();
  }
}

// One case per op: the largest shape within maxElements, else the smallest.
const byOp = new Map();
for (const c of goldenTable) {
  const prev = byOp.get(c.op);
  const n = numel(c.shape);
  if (!prev) byOp.set(c.op, c);
  else {
    const p = numel(prev.shape);
    const better = n <= maxElements ? p > maxElements || n > p : p > maxElements && n < p;
    if (better) byOp.set(c.op, c);
  }
}

for (const c of byOp.values()) {
  await attempt(c.op, c.shape, async () => {
    const got = await runOn(c, device);
    const want = device === 'cpu' ? await c.reference(c.inputs(c.shape), c.shape) : (await runOn(c, 'cpu')).values;
    const e = nmse(got.values, want);
    const ok = got.guard && !got.values.some(Number.isNaN) && e <= c.nmse;
    return {
      ok,
      nmse: e,
      bound: c.nmse,
      ...(ok ? {} : { error: !got.guard ? 'wrote past the end of its output' : `NMSE ${e} over ${c.nmse}` }),
    };
  });
}

// conv2d's weight gradient over 4 pixel slices, two per scratch group (the cap set above).
await attempt('conv2d_backward grouped slices', [4, 8, 32, 32], async () => {
  const attrs = { n: 4, cin: 8, h: 32, w: 32, cout: 8, k: 3, stride: 1 };
  const sizes = { x: 4 * 8 * 32 * 32, w: 8 * 8 * 9 };
  const values = {
    x: kintsugi.randn([sizes.x], { generator: new kintsugi.Generator(1), device: 'cpu' }),
    w: kintsugi.randn([sizes.w], { generator: new kintsugi.Generator(2), device: 'cpu' }),
    gy: kintsugi.randn([sizes.x], { generator: new kintsugi.Generator(3), device: 'cpu' }),
  };
  const host = Object.fromEntries(await Promise.all(Object.entries(values).map(async ([k, t]) => [k, await t.toArray()])));
  const run = async (where) => {
    const t = (data) => {
      const h = native.empty(where, [data.length]);
      native.write(h, data);
      return h;
    };
    const x = t(host.x),
      w = t(host.w),
      gy = t(host.gy),
      gx = native.empty(where, [sizes.x]),
      gw = native.empty(where, [sizes.w]),
      gb = native.empty(where, [8]);
    native.fill(gw, 0);
    native.fill(gb, 0);
    native.nnOp('conv2d_backward', attrs, [x, w, gy], [gx, gw, gb]);
    const r = await native.read(gw);
    for (const h of [x, w, gy, gx, gw, gb]) h.dispose();
    return r;
  };
  const e = nmse(await run(device), await run('cpu'));
  return {
    ok: e <= 1e-7,
    nmse: e,
    bound: 1e-7,
    scratchBytes: Number(process.env.KINTSUGI_CONV2D_SCRATCH_BYTES),
    ...(e <= 1e-7 ? {} : { error: `NMSE ${e}` }),
  };
});

// The network through the library: forward and backward (unet.cu and its graph helpers), AdamW, sampling.
await attempt(`unet ${preset} forward, backward, AdamW`, [2], async () => {
  const { UNet, AdamW, Generator, randn, tensor } = kintsugi;
  const net = new UNet({ ...kintsugi.presets[preset], zeroInit: false }, { device, seed: 3 });
  const opt = new AdamW(net, { lr: 1e-4 });
  const { inChannels, outChannels, resolution: r } = net.config;
  const g = new Generator(4);
  const x = randn([2, inChannels, r, r], { generator: g, device });
  const gout = randn([2, outChannels, r, r], { generator: g, device });
  const t = tensor([17, 900], [2], { device });
  const { out, tape } = net.forward(x, t);
  const gx = net.backward(tape, gout, { inputGrad: true });
  tape.release();
  opt.step();
  const values = [...(await out.toArray()), ...(await gx.toArray()), ...(await net.grads.toArray())];
  for (const u of [x, gout, t, out, gx]) u.dispose();
  net.dispose();
  const finite = values.every(Number.isFinite);
  return { ok: finite, ...(finite ? {} : { error: 'non-finite output or gradient' }) };
});

await attempt(`sample ${preset} DDIM 3 steps`, [2], async () => {
  const { UNet, NoiseSchedule, Generator, sample, unetDenoiser } = kintsugi;
  const net = new UNet({ ...kintsugi.presets[preset], zeroInit: false }, { device, seed: 3 });
  const { inChannels, resolution: r } = net.config;
  const x = await sample(unetDenoiser(net), {
    schedule: new NoiseSchedule({ kind: 'linear' }),
    prediction: 'eps',
    shape: [2, inChannels, r, r],
    device,
    method: 'ddim',
    steps: 3,
    generator: new Generator(5),
  });
  const finite = (await x.toArray()).every(Number.isFinite);
  x.dispose();
  net.dispose();
  return { ok: finite, ...(finite ? {} : { error: 'non-finite sample' }) };
});

emit({ done: true, device, cases: count, failed });
console.log(`kernels: ${count} cases on ${device}, ${failed} failed`);
process.exit(failed ? 1 : 0);
