// `kintsugi transfer pretrain | finetune | eval` (docs/transfer.md): multi-task pre-training of a shared
// condition encoder h with one head per source task, fine-tuning of a new head with h frozen (or the
// from-scratch baseline), and the posterior-sampling metrics on held-out target conditions.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { interruptible, number, progressPrinter } from '../cli-common.ts';
import { loadTransfer } from './checkpoint.ts';
import { dimsOf, loadPairs, parseDataSpec } from './data.ts';
import { malaPosteriorMean, measurementMatrix } from './langevin.ts';
import { targetModel, TransferModel, type TransferConfig } from './model.ts';
import { meanSquaredError, posteriorMean, sampleConditional, sampleMse } from './sample.ts';
import { selectSourceHead, trainTransfer } from './train.ts';
import { TRANSFER_HELP } from './help.ts';

export { TRANSFER_HELP };

const int = (v: string | undefined, fallback: number, what: string) => {
  const n = number(v, fallback, what);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: expected a positive integer, got "${v}"`);
  return n;
};

export async function transferCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return console.log(TRANSFER_HELP);
  const { values: v } = parseArgs({
    args: rest,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      from: { type: 'string' },
      model: { type: 'string' },
      n: { type: 'string' },
      m: { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      hidden: { type: 'string' },
      'encoder-depth': { type: 'string' },
      'head-depth': { type: 'string' },
      'rep-dim': { type: 'string' },
      seed: { type: 'string' },
      resume: { type: 'boolean', default: false },
      scratch: { type: 'boolean', default: false },
      test: { type: 'string' },
      samples: { type: 'string' },
      'sample-steps': { type: 'string' },
      mala: { type: 'boolean', default: false },
      init: { type: 'string', default: 'random' },
      'gaussian-skip': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return console.log(TRANSFER_HELP);
  if (!v.data) throw new Error(`transfer ${sub}: --data is required (kintsugi transfer --help)`);
  const spec = parseDataSpec(v.data);
  const seed = number(v.seed, 0, '--seed');
  const lr = number(v.lr, 1e-3, '--lr');

  if (sub === 'pretrain') {
    if (!v.out) throw new Error('transfer pretrain: --out FILE is required');
    if (spec.param !== undefined)
      throw new Error(`transfer pretrain: --data names the sources (langevin, mnist or npy:DIR), got "${v.data}"`);
    const sources = await loadPairs(spec, { role: 'train', n: int(v.n, 1000, '--n') });
    const mnist = spec.kind === 'mnist';
    const hidden = int(v.hidden, 128, '--hidden');
    const config: TransferConfig = {
      ...dimsOf(spec, sources),
      repDim: int(v['rep-dim'], mnist ? 64 : 10, '--rep-dim'),
      encoder: { hidden, depth: int(v['encoder-depth'], 3, '--encoder-depth') },
      head: { hidden, depth: int(v['head-depth'], mnist ? 3 : 2, '--head-depth') },
      tMax: 3,
      gaussianSkip: (v['gaussian-skip'] ?? (mnist ? 'yes' : 'no')) === 'yes',
    };
    if (v['gaussian-skip'] !== undefined && !['yes', 'no'].includes(v['gaussian-skip']))
      throw new Error(`--gaussian-skip: expected yes or no, got "${v['gaussian-skip']}"`);
    const model = new TransferModel(config, { heads: sources.length, seed });
    model.fitStats(sources);
    const steps = int(v.steps, 2000, '--steps');
    const controller = interruptible();
    const r = await trainTransfer({
      model,
      tasks: sources,
      steps,
      batchSize: int(v.batch, 256, '--batch'),
      optimizer: { lr, warmupSteps: Math.min(100, steps), maxGradNorm: 1 },
      cosine: true,
      seed,
      phase: 'pretrain',
      signal: controller.signal,
      onProgress: progressPrinter('pretrain'),
      progressEvery: Math.max(1, Math.floor(steps / 100)),
      checkpoint: { path: v.out, every: Math.max(1, Math.floor(steps / 10)) },
      resume: v.resume && existsSync(v.out) ? v.out : undefined,
      extra: { data: v.data },
    });
    console.log(`${r.aborted ? 'stopped' : 'done'} at step ${r.step}: ${v.out} (h and ${sources.length} heads)`);
    return;
  }

  if (sub === 'finetune') {
    if (!v.out || !v.from) throw new Error('transfer finetune: --from PRE.safetensors and --out FILE are required');
    if (spec.kind !== 'npy' && spec.param === undefined)
      throw new Error(`transfer finetune: --data names one target (e.g. langevin:beta=5.5), got "${v.data}"`);
    const m = int(v.m, 10, '--m');
    const pre = await loadTransfer(v.from);
    const [pairs] = await loadPairs(spec, { role: 'train', n: m });
    if (pairs!.n < m) throw new Error(`transfer finetune: --m ${m}, but --data has only ${pairs!.n} pairs`);
    const target = { x: pairs!.x.subarray(0, m * pre.model.config.xDim), y: pairs!.y.subarray(0, m * pre.model.config.yDim), n: m };
    let head: number | undefined;
    if (v.init === 'best-source') head = selectSourceHead(pre.model, target, { seed }).head;
    else if (/^source:\d+$/.test(v.init)) head = Number(v.init.slice(7));
    else if (v.init !== 'random') throw new Error(`--init: expected random, best-source or source:K, got "${v.init}"`);
    if (head !== undefined && !(head < pre.model.heads.length))
      throw new Error(`--init: ${v.from} has ${pre.model.heads.length} source heads, no head ${head}`);
    if (head !== undefined && v.scratch) throw new Error('--init: the scratch baseline starts f_0 at random (drop --init or --scratch)');
    if (head !== undefined) console.log(`f_0 starts from source head ${head}`);
    const model = targetModel(pre.model.config, {
      seed,
      encoder: v.scratch ? undefined : pre.model.encoder,
      headFrom: head === undefined ? undefined : pre.model.heads[head],
      stats: head === undefined ? undefined : pre.model,
    });
    // A new head gets the Gaussian skip of its m pairs (as the baseline); a source head keeps the one it was trained with.
    if (head === undefined) model.fitStats([target]);
    const steps = int(v.steps, 1000, '--steps');
    const controller = interruptible();
    const phase = v.scratch ? 'scratch' : 'finetune';
    const r = await trainTransfer({
      model,
      tasks: [target],
      freezeEncoder: !v.scratch,
      steps,
      batchSize: m,
      optimizer: { lr, maxGradNorm: 1 },
      cosine: true,
      seed,
      phase,
      signal: controller.signal,
      onProgress: progressPrinter(phase),
      progressEvery: Math.max(1, Math.floor(steps / 100)),
      checkpoint: { path: v.out, every: Math.max(1, Math.floor(steps / 10)) },
      resume: v.resume && existsSync(v.out) ? v.out : undefined,
      extra: { data: v.data, m, from: v.from, init: v.init, sourceHead: head },
    });
    console.log(
      `${r.aborted ? 'stopped' : 'done'} at step ${r.step}: ${v.out} (${v.scratch ? 'h and f_0 from scratch' : 'h frozen from ' + v.from})`,
    );
    return;
  }

  if (sub === 'eval') {
    if (!v.model) throw new Error('transfer eval: --model FILE is required');
    const { model } = await loadTransfer(v.model);
    const n = int(v.test, 100, '--test');
    const [test] = await loadPairs(spec, { role: 'test', n });
    const S = int(v.samples, 16, '--samples');
    const c = model.config;
    if (test!.x.length / test!.n !== c.xDim || test!.y.length / test!.n !== c.yDim)
      throw new Error(
        `transfer eval: ${v.model} models x of ${c.xDim} and y of ${c.yDim} values; --data has ${test!.x.length / test!.n} and ${test!.y.length / test!.n}`,
      );
    const s = sampleConditional(model, test!.y, test!.n, { samples: S, steps: int(v['sample-steps'], 50, '--sample-steps'), seed });
    const mean = posteriorMean(s, test!.n, S, c.xDim);
    console.log(`per-value MSE of the posterior samples against x: ${sampleMse(s, test!.x, test!.n, S, c.xDim).toFixed(5)}`);
    console.log(`‖posterior mean − x‖² per condition: ${meanSquaredError(mean, test!.x, test!.n, c.xDim).toFixed(5)}`);
    if (v.mala) {
      if (spec.kind !== 'langevin' || spec.param === undefined) throw new Error('transfer eval: --mala needs --data langevin:beta=B');
      const ref = malaPosteriorMean(test!.y, test!.n, spec.param, measurementMatrix(), { seed: 7 });
      console.log(
        `‖posterior mean − MALA posterior mean‖² per condition: ${meanSquaredError(mean, ref.mean, test!.n, c.xDim).toFixed(5)} (MALA acceptance ${ref.acceptance.toFixed(2)})`,
      );
    }
    return;
  }
  throw new Error(`transfer: unknown subcommand "${sub}" (pretrain, finetune or eval)`);
}
