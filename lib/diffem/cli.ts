// `kintsugi diffem`: DiffEM from the shell (docs/diffem.md). Round 0 from a Gaussian prior fitted by EM,
// K rounds of conditional-diffusion EM with per-round state in --dir (a second call resumes), and
// optionally an unconditional model trained on the last reconstructions.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  defineCommand,
  integer,
  interruptible,
  number,
  prepareOutputDir,
  progressPrinter,
  stepPrinter,
  UsageError,
} from '../cli-common.ts';
import { loadData, parseCorruptionFlag } from '../cli-train.ts';
import { corruptDataset, loadMeasurements, MeasurementSet, type OperatorParams } from '../corruption/dataset.ts';
import { writeFileAtomic } from '../write-atomic.ts';
import { tensor } from '../tensor.ts';
import { readCheckpoint } from '../checkpoint.ts';
import { gridToPng, writePng } from '../data/png.ts';
import { readNpy, writeNpy } from '../data/npy.ts';
import { defaultDevice } from '../device.ts';
import { psnr } from '../metrics/psnr.ts';
import { NoiseSchedule } from '../schedule.ts';
import { train, type TrainProgress } from '../train.ts';
import { presets, resizedConfig, UNet } from '../unet.ts';
import { DIFFEM_DEFAULTS, diffem, lastReconstructions, type EStep } from './em.ts';
import { observationsFrom, type OperatorCorruption } from './observations.ts';
import { gaussianRoundZero } from './round-zero.ts';

export const DIFFEM_HELP = `usage: kintsugi diffem (--measurements FILE | --corruption SPEC) [options]

DiffEM (docs/diffem.md): learns from corrupted, noisy measurements only (masks, block averaging,
subsampled Fourier). Round 0 fits a Gaussian prior to the observations by EM (in the operator's SVD
domain) and draws first reconstructions from it; each round then trains a conditional diffusion model,
conditioned on A⁺y and a channel describing the operator, on re-corrupted reconstructions (M-step) and
draws new reconstructions from it given the observations (E-step). Everything lands in --dir, and
running the same command again resumes there.

options:
  --measurements F  a measurement file (\`kintsugi corrupt\`, or your own masked images)
  --corruption C    or corrupt --data on the fly: mask:p=0.75 | mask:patch=4,p=0.5 | blockaverage:k=2 |
                    fourier:center=4,random=8 (seeded by --corrupt-seed, default 1; fourier signals are [2, H, W])
  --sigma0 X        measurement noise with --corruption (default 0.01)
  --data SRC        subset (default) | debian | DIR with the IDX files
  --limit N         use the first N images of --data (or of the measurement file)
  --recorrupt C     the M-step's corruption law when the measurement file does not record it (e.g. mask:p=0.75)
  --condition K     pinv (default: A⁺y) | adjoint (Aᵀy): the image the model is conditioned on
  --unobserved U    refuse (default) | zero: coordinates no measurement ever sees (block averaging's detail,
                    too few masks) are an error, or stay at 0 in round 0 (a model of the observed subspace only)
  --rounds K        EM rounds (default 32, the authors' runs)
  --epochs E        training per round in passes over the observations (default 512, the authors')
  --steps N         or training steps per round (default: E epochs, ceil(E N / batch))
  --ema X           EMA decay of each round (default 0.9999, the paper's); the E-step samples with the EMA and
                    the next round starts from it. It averages over ~1/(1 - X) steps: lower it for short rounds
  --batch B         default 64 on a GPU, 16 on the CPU
  --lr X            default 2e-4 on a GPU, 1e-3 on the CPU
  --preset P        the conditional UNet's widths: tiny16 | fmnist32 | cifar32 (default fmnist32 on a GPU, tiny16 on the CPU)
  --rank R          rank of the round-0 Gaussian prior's covariance factor (default 16)
  --prior-iterations N  EM iterations of that fit (default 30)
  --e-step E        conditional (default: DiffEM) | mmps (EM-MMPS) | dps (DPS-EM): the latter two train an
                    unconditional prior on the reconstructions and restore with it (docs/restore.md)
  --cg N            mmps E-step: conjugate-gradient iterations per step (default 3)
  --warm-start DIR  start from the last reconstructions of another run (e.g. EM-MMPS) instead of round 0
  --sampler S       ancestral (default) | heun
  --sample-steps N  default 256 (ancestral), 64 (heun); mmps 100, dps 1000
  --final-steps N   then train an unconditional model on the last reconstructions (DIR/final.safetensors)
  --seed S          default 0
  --device D        cpu | cuda | cuda:N
  --dir DIR         default diffem-run: round-K.npy and round-K.png per round, the model, state.json

The settings that shape the run (data, corruption, model, steps, seeds, sampler) are kept in
DIR/settings.json: a second call with other settings is refused, naming them; --rounds may grow.

example:
  kintsugi diffem --corruption mask:p=0.75 --sigma0 0.01 --data debian --rounds 8 --steps 4000 --ema 0.999 --final-steps 20000
  kintsugi diffem --corruption fourier:center=4,random=8 --sigma0 0.01 --limit 2000 --steps 4000 --ema 0.999`;

/** The options that shape a run: a --dir made with other values of these cannot be resumed. */
const RUN_SETTINGS = [
  'measurements',
  'corruption',
  'sigma0',
  'data',
  'limit',
  'corrupt-seed',
  'recorrupt',
  'steps',
  'batch',
  'lr',
  'preset',
  'rank',
  'prior-iterations',
  'sampler',
  'sample-steps',
  'e-step',
  'cg',
  'warm-start',
  'seed',
  'epochs',
  'ema',
  'condition',
  'unobserved',
] as const;

/**
 * Compares this call's settings with those stored in DIR/settings.json (writing them on the first
 * call). A difference is an error that names every changed option.
 */
async function checkSettings(dir: string, settings: Record<string, string | null>): Promise<void> {
  const path = join(dir, 'settings.json');
  if (!existsSync(path)) {
    await writeFileAtomic(
      path,
      new TextEncoder().encode(JSON.stringify({ format: 'kintsugi-diffem-settings-1', settings }, null, 2) + '\n'),
    );
    return;
  }
  let stored: Record<string, string | null>;
  try {
    stored = (JSON.parse(readFileSync(path, 'utf8')) as { settings: Record<string, string | null> }).settings;
  } catch (e) {
    throw new Error(`diffem: ${path} is not a DiffEM settings file (${(e as Error).message}); remove ${dir} to start over`);
  }
  const shown = (v: string | null | undefined) => (v === null || v === undefined ? '(not given)' : v);
  const changed = RUN_SETTINGS.filter((k) => (stored[k] ?? null) !== (settings[k] ?? null)).map(
    (k) => `--${k} ${shown(stored[k])} there, ${shown(settings[k])} now`,
  );
  if (changed.length > 0)
    throw new UsageError(
      `diffem: --dir ${dir} holds a run made with other settings: ${changed.join('; ')}. Repeat its settings to resume it, or choose another --dir`,
    );
}

/** The round DIR/state.json records as finished (0 when none). */
function finishedRound(dir: string): number {
  try {
    const r = (JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { round?: number }).round;
    return Number.isInteger(r) ? r! : 0;
  } catch {
    return 0;
  }
}

/** The M-step's law from a --corruption or --recorrupt spec (any operator of lib/corruption). */
function lawOf(spec: string, sigma0: number, what: string): OperatorCorruption {
  return { ...parseCorruptionFlag(spec, what), sigma0 };
}

/** The first n samples of a measurement set (--limit with --measurements). */
function headOf(set: MeasurementSet, n: number): MeasurementSet {
  if (n >= set.count) return set;
  const [, H, W] = set.signalShape as [number, number, number];
  const p = set.params;
  const params: OperatorParams =
    p.kind === 'mask'
      ? { ...p, mask: p.mask.subarray(0, n * p.maskChannels * H * W) }
      : p.kind === 'fourier'
        ? { ...p, lines: p.lines.subarray(0, n * H) }
        : p;
  const per = set.measurements.length / set.count;
  return new MeasurementSet({
    signalShape: set.signalShape,
    measurements: set.measurements.subarray(0, n * per),
    params,
    sigma0: set.sigma0,
    seed: set.seed,
    provenance: set.provenance,
  });
}

/** The law recorded in a measurement file (kintsugi corrupt writes it), when it is one of lib/corruption's. */
function recordedLaw(set: MeasurementSet): OperatorCorruption | undefined {
  const r = (set.provenance.corruption ?? {}) as Record<string, unknown>;
  if (r.kind !== set.kind)
    return set.kind === 'blockaverage' && set.params.kind === 'blockaverage'
      ? { kind: 'blockaverage', k: set.params.k, sigma0: set.sigma0 }
      : undefined;
  if (r.kind === 'mask' && typeof r.p === 'number')
    return { kind: 'mask', p: r.p, patch: typeof r.patch === 'number' ? r.patch : 1, sigma0: set.sigma0 };
  if (r.kind === 'fourier' && typeof r.centerLines === 'number' && typeof r.randomLines === 'number')
    return { kind: 'fourier', centerLines: r.centerLines, randomLines: r.randomLines, sigma0: set.sigma0 };
  if (r.kind === 'blockaverage' && set.params.kind === 'blockaverage') return { kind: 'blockaverage', k: set.params.k, sigma0: set.sigma0 };
  return undefined;
}

const describeLaw = (q: OperatorCorruption) =>
  q.kind === 'mask'
    ? `masks p = ${q.p} (patch ${q.patch ?? 1})`
    : q.kind === 'fourier'
      ? `k-space lines (${q.centerLines} centre + ${q.randomLines} random)`
      : `block averaging k = ${q.k}`;

export const diffemCommand = defineCommand('diffem', {
  summary: 'learn from masked, noisy images only: EM with a conditional diffusion model (DiffEM)',
  help: DIFFEM_HELP,
  options: {
    measurements: { type: 'string' },
    limit: { type: 'string' },
    corruption: { type: 'string' },
    sigma0: { type: 'string' },
    data: { type: 'string' },
    'corrupt-seed': { type: 'string' },
    recorrupt: { type: 'string' },
    rounds: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    lr: { type: 'string' },
    preset: { type: 'string' },
    rank: { type: 'string' },
    'prior-iterations': { type: 'string' },
    sampler: { type: 'string' },
    'sample-steps': { type: 'string' },
    'final-steps': { type: 'string' },
    epochs: { type: 'string' },
    ema: { type: 'string' },
    condition: { type: 'string' },
    unobserved: { type: 'string' },
    'e-step': { type: 'string' },
    cg: { type: 'string' },
    'warm-start': { type: 'string' },
    seed: { type: 'string' },
    device: { type: 'string' },
    dir: { type: 'string' },
  },
  run: (values) => diffemRun(values as Record<string, string | undefined>),
});

async function diffemRun(values: Record<string, string | undefined>): Promise<void> {
  if (!values.measurements === !values.corruption)
    throw new UsageError(
      'diffem: give either --measurements FILE (masked measurements) or --corruption SPEC (corrupt --data on the fly), not both and not neither',
    );
  const device = values.device ?? defaultDevice();
  const gpu = device.startsWith('cuda');
  const seed = integer(values.seed, 0, '--seed', 0);
  const limit = values.limit === undefined ? undefined : integer(values.limit, 0, '--limit');
  const rounds = integer(values.rounds, DIFFEM_DEFAULTS.rounds, '--rounds');
  const emaDecay = number(values.ema, DIFFEM_DEFAULTS.emaDecay, '--ema', { min: 0 });
  if (!(emaDecay < 1)) throw new UsageError(`--ema: expected a decay in [0, 1), got ${values.ema}`);
  const condition = (values.condition ?? 'pinv') as 'pinv' | 'adjoint';
  if (condition !== 'pinv' && condition !== 'adjoint')
    throw new UsageError(`--condition: expected pinv or adjoint, got "${values.condition}"`);
  const unobserved = (values.unobserved ?? 'refuse') as 'refuse' | 'zero';
  if (unobserved !== 'refuse' && unobserved !== 'zero')
    throw new UsageError(`--unobserved: expected refuse or zero, got "${values.unobserved}"`);
  const epochs = number(values.epochs, 512, '--epochs', { above: 0 });
  const batchSize = integer(values.batch, gpu ? 64 : 16, '--batch');
  const lr = number(values.lr, gpu ? 2e-4 : 1e-3, '--lr', { above: 0 });
  const rank = integer(values.rank, 16, '--rank');
  const priorIterations = integer(values['prior-iterations'], 30, '--prior-iterations');
  const method = (values.sampler ?? 'ancestral') as 'ancestral' | 'heun';
  if (method !== 'ancestral' && method !== 'heun') throw new UsageError(`--sampler: expected ancestral or heun, got "${method}"`);
  const sampleSteps = integer(values['sample-steps'], method === 'heun' ? 64 : 256, '--sample-steps');
  const finalSteps = integer(values['final-steps'], 0, '--final-steps', 0);
  const presetName = values.preset ?? (gpu ? 'fmnist32' : 'tiny16');
  const base = presets[presetName as keyof typeof presets];
  if (!base) throw new UsageError(`--preset: expected ${Object.keys(presets).join(', ')}, got "${presetName}"`);
  const dir = values.dir ?? 'diffem-run';
  const eStep = (values['e-step'] ?? 'conditional') as EStep;
  if (!['conditional', 'mmps', 'dps'].includes(eStep))
    throw new UsageError(`--e-step: expected conditional, mmps or dps, got "${values['e-step']}"`);
  prepareOutputDir(dir, '--dir');
  await checkSettings(dir, Object.fromEntries(RUN_SETTINGS.map((k) => [k, values[k] ?? null])));
  const done = finishedRound(dir);
  const finalPath = join(dir, 'final.safetensors');
  const finalDone = finalSteps === 0 || (existsSync(finalPath) && (await readCheckpoint(finalPath)).step >= finalSteps);
  if (done >= rounds && finalDone) {
    console.log(
      `diffem: ${dir} is already complete (${done} of ${rounds} rounds${finalSteps ? ', and the final model' : ''}); raise --rounds to run more`,
    );
    return;
  } else if (done >= rounds) console.log(`diffem: ${dir} has all ${rounds} rounds: resuming the final model`);
  else if (done > 0) console.log(`diffem: ${dir} has ${done} finished round(s): resuming round ${done + 1} of ${rounds}`);

  // The observations, the law that made them (the M-step repeats it), and the clean signals when known.
  let clean: Float32Array | undefined;
  let set: MeasurementSet;
  let law: OperatorCorruption;
  if (values.corruption) {
    const sigma0 = number(values.sigma0, 0.01, '--sigma0', { min: 0 });
    law = lawOf(values.corruption, sigma0, '--corruption');
    const data = await loadData(values.data ?? 'subset', limit);
    const { sigma0: _, ...spec } = law;
    set = await corruptDataset(data.images, data.shape, {
      corruption: spec,
      sigma0,
      seed: integer(values['corrupt-seed'], 1, '--corrupt-seed', 0),
      device: 'cpu',
      source: data.file,
    });
    // Fourier signals are complex [2, H, W]: the clean image is the real channel.
    const [n, c, h, w] = data.shape;
    if (set.signalShape[0] === c) clean = data.images;
    else {
      clean = new Float32Array(n * 2 * h * w);
      for (let i = 0; i < n; i++) clean.set(data.images.subarray(i * h * w, (i + 1) * h * w), i * 2 * h * w);
    }
  } else {
    set = await loadMeasurements(values.measurements!);
    if (limit !== undefined) set = headOf(set, limit);
    const recorded = recordedLaw(set);
    if (values.recorrupt) law = lawOf(values.recorrupt, set.sigma0, '--recorrupt');
    else if (recorded) law = recorded;
    else
      throw new UsageError(
        `diffem: ${values.measurements} does not record how its ${set.kind} operators were drawn; give the law with --recorrupt (e.g. mask:p=0.75 or fourier:center=8,random=8)`,
      );
    if (law.kind !== set.kind) throw new UsageError(`--recorrupt: the measurements are of kind ${set.kind}, the law given is ${law.kind}`);
  }
  const observations = await observationsFrom(set, { condition });
  const [N, C, H, W] = observations.shape;
  const d = C * H * W;
  const steps = integer(values.steps, Math.ceil((epochs * N) / batchSize), '--steps');
  console.log(
    `diffem: ${N} observations [${C}, ${H}, ${W}], ${describeLaw(law)}, sigma0 ${law.sigma0}, conditioned on ${condition === 'pinv' ? 'A⁺y' : 'Aᵀy'}; ` +
      `${rounds} rounds of ${steps} steps of batch ${batchSize}${values.steps === undefined ? ` (${epochs} epochs)` : ''}, EMA ${emaDecay}; state in ${dir}`,
  );
  if (emaDecay > 0 && emaDecay ** steps > 0.05)
    console.log(
      `note: EMA ${emaDecay} averages over about ${Math.round(1 / (1 - emaDecay))} steps; after ${steps} steps a round's EMA still holds ${(100 * emaDecay ** steps).toFixed(0)} % of its starting weights (lower --ema for short rounds, e.g. 0.999)`,
    );
  const quality = async (x: Float32Array) => {
    if (clean)
      return `PSNR ${(await psnr({ data: x, shape: [N, C, H, W] }, { data: clean, shape: [N, C, H, W] })).mean.toFixed(2)} dB against the clean ${C === 2 && set.kind === 'fourier' ? 'signals (real image, zero imaginary part)' : 'images'}`;
    // Without clean images: agreement with the measurements, ‖A x̂ − y‖ on the coordinates that carry data.
    using op = set.operator({ device: 'cpu' });
    using xt = tensor(x, [N, C, H, W], { device: 'cpu' });
    using ax = op.apply(xt);
    using m = op.measurementMask() ?? undefined;
    const [a, mv] = [await ax.toArray(), m ? await m.toArray() : undefined];
    let se = 0;
    let k = 0;
    for (let q = 0; q < a.length; q++)
      if (!mv || mv[q]) {
        se += (a[q]! - set.measurements[q]!) ** 2;
        k++;
      }
    return `RMS ${Math.sqrt(se / k).toFixed(4)} of A x̂ − y on the measured coordinates (sigma0 ${law.sigma0})`;
  };
  // The PNG shows channel 0 of complex (Fourier) signals: the real image.
  const shown = Math.min(64, N);
  const grid = (k: number, x: Float32Array) => {
    if (set.kind !== 'fourier') return writePng(join(dir, `round-${k}.png`), gridToPng(x.subarray(0, shown * d), [shown, C, H, W]));
    const re = new Float32Array(shown * H * W);
    for (let i = 0; i < shown; i++) re.set(x.subarray(i * d, i * d + H * W), i * H * W);
    return writePng(join(dir, `round-${k}.png`), gridToPng(re, [shown, 1, H, W]));
  };

  // Round 0, once: later calls on the same --dir reuse it.
  const round0 = join(dir, 'round-0.npy');
  let initial: Float32Array;
  if (values['warm-start']) {
    const warm = await lastReconstructions(values['warm-start'], [N, C, H, W]);
    initial = warm.x;
    console.log(`warm start: round ${warm.round} of ${values['warm-start']}`);
  } else if (existsSync(round0)) initial = (await readNpy(round0)).data as Float32Array;
  else {
    const progress = stepPrinter(`round 0: Gaussian prior (rank ${rank}), EM iteration`);
    let r0;
    try {
      r0 = await gaussianRoundZero(set, {
        rank,
        iterations: priorIterations,
        seed,
        unobserved,
        onIteration: (it, ll) => progress(it, priorIterations, `log-likelihood ${ll.toFixed(0)}`),
      });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (r0.unobserved > 0)
      console.log(
        `round 0: ${r0.unobserved} of ${r0.coordinates} coordinates are never observed and stay at 0 (--unobserved zero): DiffEM models the observed subspace only`,
      );
    initial = r0.x;
    await writeNpy(round0, { shape: [N, C, H, W], data: initial });
    await grid(0, initial);
  }
  console.log(`${values['warm-start'] ? 'warm start' : 'round 0 (Gaussian prior)'}: ${await quality(initial)}`);

  if (H !== W) throw new UsageError(`diffem: the UNet takes square images, got ${H}x${W}`);
  const config = eStep === 'conditional' ? resizedConfig(base, H, 2 * C + 1, C) : resizedConfig(base, H, C, C);
  const model = new UNet(config, { device, seed });
  const controller = interruptible(); // the round in progress is saved: the same command resumes it
  const printers = new Map<string, (p: TrainProgress) => void>();
  const samplers = new Map<number, ReturnType<typeof stepPrinter>>();
  const print = (p: TrainProgress, label: string) => {
    if (!printers.has(label)) printers.set(label, progressPrinter(label));
    printers.get(label)!(p);
  };
  const result = await diffem({
    model,
    observations,
    corruption: law,
    initial,
    rounds,
    stepsPerRound: steps,
    batchSize,
    emaDecay,
    optimizer: { lr, warmupSteps: Math.min(200, Math.floor(steps / 10)), maxGradNorm: 1 },
    eStep,
    sampler:
      eStep === 'conditional'
        ? { method, steps: sampleSteps }
        : {
            steps: values['sample-steps'] === undefined ? undefined : integer(values['sample-steps'], 0, '--sample-steps'),
            cgIterations: integer(values.cg, 3, '--cg'),
          },
    onSample: (round, n, total) => {
      if (!samplers.has(round)) samplers.set(round, stepPrinter(`round ${round}: E-step, reconstructions`));
      samplers.get(round)!(n, total);
    },
    seed,
    dir,
    signal: controller.signal,
    onProgress: (round, p) => print(p, `round ${round}`),
    onRound: async (r) => {
      await grid(r.round, r.reconstructions);
      console.log(
        `round ${r.round}: ${await quality(r.reconstructions)}; train ${r.trainSeconds.toFixed(0)} s, E-step ${r.sampleSeconds.toFixed(0)} s`,
      );
    },
  });
  model.dispose();
  if (result.aborted) return;
  if (finalSteps > 0) {
    // The generative model: unconditional, trained on the last reconstructions as if they were clean data.
    const net = new UNet(resizedConfig(base, H, C, C), { device, seed });
    const path = join(dir, 'final.safetensors');
    await train({
      model: net,
      data: { images: result.reconstructions, shape: [N, C, H, W] },
      steps: finalSteps,
      batchSize,
      schedule: new NoiseSchedule({ kind: 'linear' }),
      prediction: 'eps',
      seed,
      optimizer: { lr, warmupSteps: Math.min(200, Math.floor(finalSteps / 10)), maxGradNorm: 1 },
      checkpoint: { path, every: Math.max(1, Math.floor(finalSteps / 10)) },
      resume: existsSync(path) ? path : undefined,
      onProgress: (p) => print(p, 'final'),
      signal: controller.signal,
    });
    net.dispose();
    console.log(`wrote ${path}: an unconditional model of the reconstructions (kintsugi sample --checkpoint ${path})`);
  }
}
