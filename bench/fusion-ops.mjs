// `node bench/fusion-ops.mjs` (after `npm run build`; KINTSUGI_CPU_THREADS=1 on a shared machine).
// Per-op CPU time, unfused vs fused, at the ResBlock's shapes (1 thread): GroupNorm + SiLU forward and
// backward, and a 3x3 convolution with the time bias and residual added by separate passes vs in its
// output pass. Interleaved repetitions; medians of per-block CPU time per call.
import { Generator, randn, synchronize } from '../dist/index.js';
import { native } from '../dist/native.js';
const g = new Generator(3);
const T = (shape) => randn(shape, { generator: g, device: 'cpu' }).handle();
const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
async function cpuPerCall(fn, reps) {
  fn();
  await synchronize('cpu');
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) fn();
  await synchronize('cpu');
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / reps;
}
const out = {};
for (const [name, n, c, r] of [
  ['tiny16', 16, 32, 16],
  ['small32', 16, 32, 32],
  ['fmnist32', 16, 64, 32],
]) {
  const hw = r * r,
    gn = { n, c, hw, groups: 32 },
    conv = { n, cin: c, h: r, w: r, cout: c, k: 3, stride: 1 };
  const x = T([n, c, r, r]),
    u = T([n, c, r, r]),
    a = T([n, c, r, r]),
    gy = T([n, c, r, r]),
    ga = T([n, c, r, r]),
    gx = T([n, c, r, r]);
  const gam = T([c]),
    bet = T([c]),
    mean = T([n, 32]),
    rstd = T([n, 32]),
    gg = T([c]),
    gb = T([c]);
  const w = T([c, c, 3, 3]),
    b = T([c]),
    tb = T([n, c]),
    res = T([n, c, r, r]),
    y = T([n, c, r, r]);
  native.nnOp('groupnorm_forward', gn, [x, gam, bet], [u, mean, rstd]);
  const variants = {
    'gn+silu fwd, unfused': () => {
      native.nnOp('groupnorm_forward', gn, [x, gam, bet], [u, mean, rstd]);
      native.nnOp('silu_forward', { n: n * c * hw }, [u], [a]);
    },
    'gn+silu fwd, fused': () => native.nnOp('groupnorm_silu_forward', gn, [x, gam, bet], [a, mean, rstd]),
    'gn+silu bwd, unfused': () => {
      native.nnOp('silu_backward', { n: n * c * hw }, [u, gy], [ga]);
      native.nnOp('groupnorm_backward', gn, [x, gam, mean, rstd, ga], [gx, gg, gb]);
    },
    'gn+silu bwd, fused': () => native.nnOp('groupnorm_silu_backward', gn, [x, gam, bet, mean, rstd, gy], [gx, gg, gb]),
  };
  variants['conv3x3 plain'] = () => native.nnOp('conv2d_forward', conv, [a, w, b], [y]);
  variants['conv3x3 then a residual pass (add)'] = () => {
    native.nnOp('conv2d_forward', conv, [a, w, b], [y]);
    native.add(y, res, y);
  };
  variants['conv3x3 +time bias +residual in the output pass'] = () => native.nnOp('conv2d_forward_fused', conv, [a, w, b, tb, res], [y]);
  const reps = Math.max(3, Math.round(2e6 / (n * c * hw)));
  const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let round = 0; round < 7; round++) for (const [k, fn] of Object.entries(variants)) samples[k].push(await cpuPerCall(fn, reps));
  out[name] = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, +med(v).toFixed(3)]));
  console.error(name, out[name]);
}
console.log(JSON.stringify(out));
