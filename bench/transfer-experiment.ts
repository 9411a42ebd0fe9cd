// The transfer-learning experiments of docs/transfer.md, CPU-sized: pre-train h with K source heads,
// then for each target size m and replicate, fine-tune a new head with h frozen and train (f_0, h) from
// scratch on the same m pairs with the same budget, and score both on 100 test conditions.
//
//   node --import ./test/support/register-ts.mjs bench/transfer-experiment.ts --experiment langevin --out DIR [options]
//   node --import ./test/support/register-ts.mjs bench/transfer-experiment.ts --experiment mnist --out DIR [options]
//
// langevin: sources β = 1..10 (n pairs each), targets --beta0 (5.5,15); metric: ‖posterior mean − MALA
//   posterior mean‖² (summed over the 50 coordinates), averaged over the test conditions.
// mnist: sources digits 1..9, target digit 0, y = x + N(0, I/4); metric: per-pixel MSE of one posterior
//   sample per test image against the clean image.
// Writes DIR/results.json and DIR/results.md; DIR/pretrained.safetensors is reused when present (--reuse).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { seededNormals } from '../lib/metrics/normals.ts';
import { loadTransfer } from '../lib/transfer/checkpoint.ts';
import { langevinTask, malaPosteriorMean, measurementMatrix, PATH_STEPS } from '../lib/transfer/langevin.ts';
import { loadMnistDigit, MNIST_PIXELS } from '../lib/transfer/mnist.ts';
import { targetModel, TransferModel, type TransferConfig } from '../lib/transfer/model.ts';
import { meanSquaredError, posteriorMean, sampleConditional, sampleMse } from '../lib/transfer/sample.ts';
import { selectSourceHead, trainTransfer, type PairSet } from '../lib/transfer/train.ts';

const { values: a } = parseArgs({
  options: {
    experiment: { type: 'string', default: 'langevin' },
    out: { type: 'string' },
    n: { type: 'string' },
    'pretrain-steps': { type: 'string', default: '2000' },
    'pretrain-batch': { type: 'string', default: '256' },
    'finetune-steps': { type: 'string', default: '1000' },
    lr: { type: 'string', default: '1e-3' },
    m: { type: 'string', default: '10,20,50,100' },
    seeds: { type: 'string', default: '3' },
    beta0: { type: 'string', default: '5.5,15' },
    test: { type: 'string', default: '100' },
    samples: { type: 'string', default: '16' },
    'sample-steps': { type: 'string', default: '50' },
    hidden: { type: 'string' },
    'encoder-depth': { type: 'string' },
    reuse: { type: 'boolean', default: false },
    methods: { type: 'string', default: 'finetune,scratch,finetune-src,zero-shot' },
    tag: { type: 'string', default: '' },
  },
});
if (!a.out) throw new Error('--out DIR is required');
const out = a.out;
mkdirSync(out, { recursive: true });
const list = (s: string) => s.split(',').map(Number);
const log = (...v: unknown[]) => console.log(new Date().toISOString().slice(11, 19), ...v);
const mnist = a.experiment === 'mnist';
if (!mnist && a.experiment !== 'langevin') throw new Error(`--experiment: expected langevin or mnist, got ${a.experiment}`);

// Network sizes: the paper's shapes (depths, d_y) at a CPU width (--hidden; the paper uses 512 for h).
const hidden = Number(a.hidden ?? (mnist ? 256 : 128));
const config: TransferConfig = mnist
  ? {
      xDim: MNIST_PIXELS,
      yDim: MNIST_PIXELS,
      repDim: 64,
      encoder: { hidden, depth: Number(a['encoder-depth'] ?? 3) },
      head: { hidden, depth: 3 },
      tMax: 3,
      gaussianSkip: true,
    }
  : {
      xDim: PATH_STEPS,
      yDim: 100,
      repDim: 10,
      encoder: { hidden, depth: Number(a['encoder-depth'] ?? 3) },
      head: { hidden: 128, depth: 2 },
      tMax: 3,
    };

// ------------------------------------------------------------------------------------------------ data
const seed = 20250206n;
let sources: PairSet[];
let targets: { name: string; pool: PairSet; test: PairSet; reference?: Float64Array; refToTruth?: number }[];
if (mnist) {
  const per = Number(a.n ?? 1000);
  const noisy = (x: Float32Array, count: number, stream: bigint): PairSet => {
    const z = seededNormals(x.length, seed, stream);
    return { x, y: Float32Array.from(x, (v, i) => v + 0.5 * z[i]!), n: count };
  };
  sources = [];
  for (let d = 1; d <= 9; d++) {
    const { images, count } = await loadMnistDigit(d);
    const k = Math.min(per, count);
    sources.push(noisy(images.slice(0, k * MNIST_PIXELS), k, BigInt(d)));
  }
  const zero = await loadMnistDigit(0);
  const nTest = Number(a.test);
  // the last nTest zeros are the test set; target pairs are drawn from the others
  const test = noisy(zero.images.slice((zero.count - nTest) * MNIST_PIXELS), nTest, 100n);
  const pool = noisy(zero.images.slice(0, (zero.count - nTest) * MNIST_PIXELS), zero.count - nTest, 101n);
  targets = [{ name: 'digit 0', pool, test }];
} else {
  const M = measurementMatrix();
  const n = Number(a.n ?? 1000);
  sources = Array.from({ length: 10 }, (_, k) => langevinTask(k + 1, n, M, seed, k));
  targets = list(a.beta0).map((b, j) => {
    const test = langevinTask(b, Number(a.test), M, seed + 1n, 50 + j);
    const cache = join(out, `mala-beta${b}.json`);
    let reference: Float64Array;
    if (existsSync(cache)) reference = Float64Array.from(JSON.parse(readFileSync(cache, 'utf8')) as number[]);
    else {
      const t0 = performance.now();
      const r = malaPosteriorMean(test.y, test.n, b, M, { chains: 4, burnIn: 2000, samples: 4000, seed: 7 });
      log(`MALA reference for β0 = ${b}: acceptance ${r.acceptance.toFixed(2)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      reference = r.mean;
      writeFileSync(cache, JSON.stringify(Array.from(reference)));
    }
    return {
      name: `β0 = ${b}`,
      pool: langevinTask(b, 1000, M, seed + 2n, 70 + j),
      test,
      reference,
      refToTruth: meanSquaredError(reference, test.x, test.n, PATH_STEPS),
    };
  });
}

// ------------------------------------------------------------------------------------------ pre-training
const ckpt = join(out, 'pretrained.safetensors');
let pretrained: TransferModel;
const lr = Number(a.lr);
if (a.reuse && existsSync(ckpt)) {
  pretrained = (await loadTransfer(ckpt)).model;
  log(`reusing ${ckpt}`);
} else {
  pretrained = new TransferModel(config, { heads: sources.length, seed: 1 });
  pretrained.fitStats(sources);
  const t0 = performance.now();
  await trainTransfer({
    model: pretrained,
    tasks: sources,
    steps: Number(a['pretrain-steps']),
    batchSize: Number(a['pretrain-batch']),
    optimizer: { lr, warmupSteps: 100, maxGradNorm: 1 },
    cosine: true,
    seed: 1,
    phase: 'pretrain',
    progressEvery: 250,
    onProgress: (p) => log(`pretrain ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} (${p.imagesPerSecond.toFixed(0)} pairs/s)`),
    checkpoint: { path: ckpt, every: 500 },
  });
  log(`pre-training: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

// ------------------------------------------------------------------------------------ fine-tune vs scratch
const S = mnist ? 1 : Number(a.samples);
const sampleSteps = Number(a['sample-steps']);
function score(model: TransferModel, t: (typeof targets)[number], rep: number): number {
  const s = sampleConditional(model, t.test.y, t.test.n, { samples: S, steps: sampleSteps, seed: 1000 + rep });
  if (mnist) return sampleMse(s, t.test.x, t.test.n, S, config.xDim);
  return meanSquaredError(posteriorMean(s, t.test.n, S, config.xDim), t.reference!, t.test.n, config.xDim);
}
/** m pairs of the pool, a different draw per replicate. */
function subset(pool: PairSet, m: number, rep: number): PairSet {
  const order = Array.from(seededNormals(pool.n, seed, 500n + BigInt(rep)), (v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]);
  const rows = order.slice(0, m).map(([, i]) => i);
  const dx = config.xDim;
  const dy = config.yDim;
  const x = new Float32Array(m * dx);
  const y = new Float32Array(m * dy);
  rows.forEach((i, r) => {
    x.set(pool.x.subarray(i * dx, (i + 1) * dx), r * dx);
    y.set(pool.y.subarray(i * dy, (i + 1) * dy), r * dy);
  });
  return { x, y, n: m };
}

const results: { target: string; m: number; rep: number; method: string; mse: number; seconds: number; sourceHead: number }[] = [];
const methods = a.methods.split(',');
for (const m of methods)
  if (!['finetune', 'scratch', 'finetune-src', 'zero-shot'].includes(m)) throw new Error(`--methods: unknown method ${m}`);
const ms = list(a.m);
const reps = Number(a.seeds);
for (const t of targets) {
  if (t.refToTruth !== undefined) log(`${t.name}: ‖MALA mean − true x‖² = ${t.refToTruth.toFixed(3)} (the posterior spread)`);
  for (const m of ms)
    for (let rep = 0; rep < reps; rep++) {
      const pairs = subset(t.pool, m, rep);
      const src = selectSourceHead(pretrained, pairs, { seed: 100 + rep });
      for (const method of methods) {
        const frozen = method !== 'scratch';
        const fromSource = method === 'finetune-src' || method === 'zero-shot';
        const model = targetModel(config, {
          seed: 100 + rep,
          encoder: frozen ? pretrained.encoder : undefined,
          headFrom: fromSource ? pretrained.heads[src.head] : undefined,
          stats: fromSource ? pretrained : undefined,
        });
        // A new head gets the Gaussian skip of its m pairs (as the baseline); a source head keeps the one it was trained with.
        if (!fromSource) model.fitStats([pairs]);
        const t0 = performance.now();
        if (method !== 'zero-shot')
          await trainTransfer({
            model,
            tasks: [pairs],
            freezeEncoder: frozen,
            steps: Number(a['finetune-steps']),
            batchSize: m,
            optimizer: { lr, maxGradNorm: 1 },
            cosine: true,
            seed: 100 + rep,
            phase: method,
          });
        const mse = score(model, t, rep);
        const seconds = (performance.now() - t0) / 1000;
        results.push({ target: t.name, m, rep, method, mse, seconds, sourceHead: src.head });
        log(
          `${t.name} m=${m} rep ${rep} ${method}${method.endsWith('src') || method === 'zero-shot' ? ` (head ${src.head})` : ''}: ${mse.toFixed(4)} (${seconds.toFixed(0)} s)`,
        );
      }
      writeFileSync(join(out, `results${a.tag}.json`), JSON.stringify({ args: a, config, results }, null, 1));
    }
}
// --------------------------------------------------------------------------------------------- summary
const stats = (v: number[]) => {
  const mean = v.reduce((x, y) => x + y, 0) / v.length;
  const sd = Math.sqrt(v.reduce((x, y) => x + (y - mean) ** 2, 0) / Math.max(1, v.length - 1));
  return `${mean.toFixed(mnist ? 4 : 2)} ± ${sd.toFixed(mnist ? 4 : 2)}`;
};
const lines = [`| target | method | ${ms.map((m) => `m=${m}`).join(' | ')} |`, `|---|---|${ms.map(() => '---').join('|')}|`];
for (const t of targets)
  for (const method of methods)
    lines.push(
      `| ${t.name} | ${method} | ${ms.map((m) => stats(results.filter((r) => r.target === t.name && r.m === m && r.method === method).map((r) => r.mse))).join(' | ')} |`,
    );
writeFileSync(join(out, `results${a.tag}.md`), lines.join('\n') + '\n');
writeFileSync(
  join(out, `results${a.tag}.json`),
  JSON.stringify({ args: a, config, refToTruth: targets.map((t) => [t.name, t.refToTruth]), results }, null, 1),
);
console.log(lines.join('\n'));
