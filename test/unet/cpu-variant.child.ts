// Run by cpu-variants.test.ts in a child process, whose environment picks the CPU kernels' variant
// (KINTSUGI_CPU_ISA) or the thread pool's size (KINTSUGI_CPU_THREADS): both are fixed when the addon
// loads. Prints one JSON line.
//   nmse: the float tiny16 network against the double reference on the PyTorch fixture, and one
//         AdamW update against the same update computed here in double.
//         Also (`fused`) the fused ops' golden cases (groupnorm_silu forward/backward, conv2d_forward_fused: the
//         ISA kernels affine_silu and silu_grad_sums, the convolution's output pass) against their
//         unfused double references: the worst NMSE / bound ratio per op.
//   bits: a hash of two training steps' parameters and outputs (for the thread-count comparison).
import { createHash } from 'node:crypto';
import { AdamW, buildInfo, Generator, randn, tensor, UNet, unetLayout, zeros, type UNetConfig } from '../../lib/index.ts';
import { native } from '../../lib/native.ts';
import { get, readFixture, relErr } from '../reference/fixtures.ts';
import { nmse as nmseOf } from '../helpers.ts';
import { goldenTable } from '../golden/table.ts';

const mode = process.argv[2];
const info = buildInfo();

async function nmse() {
  const f = readFixture(new URL('../fixtures/unet/tiny16.safetensors', import.meta.url).pathname);
  const config = { ...(JSON.parse(f.metadata['kintsugi.config']!) as UNetConfig), zeroInit: false };
  const { params, paramCount } = unetLayout(config);
  const flat = new Float64Array(paramCount);
  for (const p of params) flat.set(get(f, p.name), p.offset);
  const r = await native.referenceUNet(config, { n: 2, params: flat, x: get(f, 'x'), t: get(f, 't'), gout: get(f, 'g') });
  const net = new UNet(config, { device: 'cpu' });
  net.setParams(Float32Array.from(flat));
  const x = tensor(Float32Array.from(get(f, 'x')), [2, 1, 16, 16], { device: 'cpu' });
  const t = tensor(Float32Array.from(get(f, 't')), [2], { device: 'cpu' });
  const g = tensor(Float32Array.from(get(f, 'g')), [2, 1, 16, 16], { device: 'cpu' });
  const { out, tape } = net.forward(x, t);
  const gx = net.backward(tape, g, { inputGrad: true })!;
  tape.release();
  const e = (a: ArrayLike<number>, b: ArrayLike<number>) => relErr(a, b) ** 2;
  const result = {
    out: e(await out.toArray(), r.out),
    gx: e(await gx.toArray(), r['grad.x']),
    grads: e(await net.grads.toArray(), r['grad.params']),
  };

  // AdamW, 10,007 elements (not a whole number of vectors: the tail path too), step 3, weight decay.
  const n = 10_007,
    gen = new Generator(4);
  const [p0, g0, m0] = await Promise.all([
    randn([n], { generator: gen }).toArray(),
    randn([n], { generator: gen }).toArray(),
    randn([n], { generator: gen }).scale(0.1).toArray(),
  ]);
  const v0 = (await randn([n], { generator: gen }).toArray()).map((z) => 0.01 * z * z);
  const [p, gr, m, v] = [p0, g0, m0, v0].map((a) => tensor(a, [n]));
  const o = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3, maxNorm: 0 };
  native.adamw(p!.handle(), gr!.handle(), m!.handle(), v!.handle(), zeros([1]).handle(), o);
  const [p1, m1, v1] = await Promise.all([p!.toArray(), m!.toArray(), v!.toArray()]);
  let em = 0,
    ev = 0,
    ep = 0;
  for (let i = 0; i < n; i++) {
    const mi = o.beta1 * m0[i]! + (1 - o.beta1) * g0[i]!;
    const vi = o.beta2 * v0[i]! + (1 - o.beta2) * g0[i]! ** 2;
    const pi = p0[i]! * (1 - o.lr * o.weightDecay) - ((o.lr / (1 - o.beta1 ** 3)) * mi) / (Math.sqrt(vi / (1 - o.beta2 ** 3)) + o.eps);
    // m relative to its terms' size (it can cancel to ~0); v carries float's 1 - beta2 (1.3e-5 off).
    em = Math.max(em, Math.abs(m1[i]! - mi) / (Math.abs(o.beta1 * m0[i]!) + Math.abs((1 - o.beta1) * g0[i]!)));
    ev = Math.max(ev, Math.abs(v1[i]! - vi) / Math.abs(vi));
    ep = Math.max(ep, Math.abs(p1[i]! - pi));
  }
  return { ...result, adamw: { m: em, v: ev, p: ep }, ...(await fused()) };
}

async function bits() {
  const net = new UNet('tiny16', { device: 'cpu', seed: 7 });
  const opt = new AdamW(net, { lr: 1e-3 });
  const gen = new Generator(2);
  const x = randn([3, 1, 16, 16], { generator: gen });
  const t = tensor([5, 400, 990], [3]);
  const hash = createHash('sha256');
  for (let s = 0; s < 2; s++) {
    net.zeroGrad();
    const { out, tape } = net.forward(x, t);
    net.backward(tape, out);
    tape.release();
    opt.step();
    hash.update(new Uint8Array((await out.toArray()).buffer));
  }
  hash.update(new Uint8Array((await net.params.toArray()).buffer));
  return { hash: hash.digest('hex') };
}

async function fused() {
  const worst: Record<string, number> = {};
  const ops = ['groupnorm_silu forward', 'groupnorm_silu backward', 'time bias + residual'];
  for (const c of goldenTable.filter((g) => ops.some((o) => g.op.includes(o)))) {
    const inputs = c.inputs(c.shape);
    const shapes = c.inputShapes?.(c.shape);
    const handles = inputs.map((data, i) => {
      const h = native.empty('cpu', shapes?.[i] ?? c.shape);
      native.write(h, data);
      return h;
    });
    const out = native.empty('cpu', c.outShape?.(c.shape) ?? c.shape);
    c.run(handles, out);
    const ratio = nmseOf(await native.read(out), await c.reference(inputs, c.shape)) / c.nmse;
    const key = ops.find((o) => c.op.includes(o))!;
    worst[key] = Math.max(worst[key] ?? 0, Number.isNaN(ratio) ? Infinity : ratio);
    for (const h of [...handles, out]) h.dispose();
  }
  return { fused: worst };
}

const body = mode === 'nmse' ? await nmse() : await bits();
console.log(JSON.stringify({ isa: info.cpuIsa, supported: info.cpuIsaSupported, threads: info.cpuThreads, ...body }));
