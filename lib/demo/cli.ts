// `kintsugi demo` (docs/demo.md): a model learns Fashion-MNIST garments from corrupted images only and
// draws one picture: the corrupted inputs | samples of the learned model | its restorations of the inputs. On two CPU cores it fine-tunes a small prior that was itself trained from corrupted data only
// (scripts/train-demo-prior.ts), so the whole run fits in about five minutes; the classifier of
// lib/metrics then says how many samples are recognisable garments, and FD-FMNIST how close they are.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCheckpoint } from '../checkpoint.ts';
import {
  defineCommand,
  duration,
  integer,
  interruptible,
  number,
  prepareOutputDir,
  progressPrinter,
  stepPrinter,
  str,
  UsageError,
} from '../cli-common.ts';
import { announceDevice } from '../cli-train.ts';
import { loadFashionMnist } from '../data/fashion-mnist.ts';
import { writeNpy } from '../data/npy.ts';
import { lossCurveSvg } from '../data/plot.ts';
import { writePng } from '../data/png.ts';
import { defaultDevice } from '../device.ts';
import { gsureSchedule, svdStatistics, trainGsure } from '../gsure/train.ts';
import { Generator } from '../random.ts';
import { unetPrior } from '../restore/denoiser.ts';
import { restore } from '../restore/restore.ts';
import { uniformAttentionGuidance } from '../guidance.ts';
import { sample } from '../sample.ts';
import { UNet } from '../unet.ts';
import { demoPicture, type Panel } from './picture.ts';
import { confidentShare, demoQuality } from './quality.ts';
import { atClassifierSize, atResolution, DEMO_CORRUPTION, demoMeasurements, demoResolution, demoUNet } from './recipe.ts';

export const DEMO_PRIOR = 'demo-prior.safetensors';

/**
 * The samples' uniform-attention guidance weight (lib/guidance.ts). On the shipped prior's sample seeds
 * 1-16 it raised the confident share from 75.0 % (unguided) to 78.6 % at 3, against 76.4 % at 2 (and, on
 * seeds 1-8, 77.1 % at 4 and 75.0 % at 5), FD-FMNIST unchanged; on seeds 17-32, drawn after the choice,
 * 77.4 % against 75.1 % (docs/demo.md#guidance).
 */
export const DEMO_GUIDANCE = 3;

/** The shipped prior: lib/assets/ is ../assets/ from lib/demo/*.ts and ../../lib/assets/ from dist/demo/*.js. */
export function demoPriorPath(): string | undefined {
  return ['../assets/', '../../lib/assets/']
    .map((rel) => join(fileURLToPath(new URL(rel, import.meta.url)), DEMO_PRIOR))
    .find((p) => existsSync(p));
}

const HELP = `usage: kintsugi demo [--out DIR] [--steps N] [--device D]

Learns Fashion-MNIST garments from corrupted images only: the 2,000 images shipped with the package,
at 32x32 (averaged to 16x16 with a 16x16 prior, or with --no-prior on the CPU), each pixel missing with probability ${DEMO_CORRUPTION.p} and noise ${DEMO_CORRUPTION.sigma0} on the rest. The model
(GSURE-Diffusion) starts from a small prior trained the same way on other corruptions of the same images
(lib/assets/${DEMO_PRIOR}, docs/demo.md) and is fine-tuned for --steps steps; then it draws 64 samples and
the shipped classifier counts how many are recognisable garments.

Writes DIR/demo.png (corrupted inputs | samples | restorations of the inputs), DIR/samples.npy, DIR/restored.npy, DIR/loss.svg, DIR/checkpoint.safetensors
and DIR/summary.json (default DIR: kintsugi-demo).

options:
  --out DIR         output folder (default kintsugi-demo)
  --minutes M       time box of the fine-tuning (default 3 on the CPU: the whole demo then takes about
                    5 minutes on two cores; none on a GPU)
  --steps N         at most this many fine-tuning steps (default 2000 on the CPU, 3000 on a GPU)
  --batch B         default 16 on the CPU, 128 on a GPU
  --lr X            learning rate (default 1e-4 from the prior, 1e-3 from scratch)
  --ema D           decay of the weights' moving average that samples and restores (default 0.999
                    from the prior, 0.995 from scratch)
  --sample-steps N  DDIM steps of the samples (default 25)
  --guidance W      uniform-attention guidance of the samples (default 3; 1 turns it off): the network
                    is also run with its attention maps made uniform, and the samples are pushed away
                    from that weakened prediction, which draws garments in one piece (docs/demo.md)
  --restore-steps N DDRM steps of the restorations (default 20)
  --prior FILE      start from this prior instead of the shipped one (a checkpoint of
                    scripts/train-demo-prior.ts; its network sets the resolution)
  --no-prior        train from scratch instead (needs a GPU or much longer to give garments)
  --resolution R    16 or 32, with --no-prior (default 16 on the CPU, 32 on a GPU)
  --seed S          default 0
  --device D        cpu | cuda | cuda:N

examples:
  npx kintsugi demo
  npx kintsugi demo --steps 3000 --out run1`;

export const demoCommand = defineCommand('demo', {
  summary: 'learn garments from corrupted images only, in minutes: writes one picture (inputs | samples | restorations)',
  help: HELP,
  options: {
    out: { type: 'string' },
    steps: { type: 'string' },
    minutes: { type: 'string' },
    batch: { type: 'string' },
    'sample-steps': { type: 'string' },
    guidance: { type: 'string' },
    'restore-steps': { type: 'string' },
    lr: { type: 'string' },
    ema: { type: 'string' },
    'no-prior': { type: 'boolean' },
    resolution: { type: 'string' },
    prior: { type: 'string' },
    seed: { type: 'string' },
    device: { type: 'string' },
  },
  async run(values) {
    const began = performance.now();
    const device = str(values, 'device') ?? defaultDevice();
    const gpu = device.startsWith('cuda');
    const steps = integer(str(values, 'steps'), gpu ? 3000 : 2000, '--steps');
    const minutes = str(values, 'minutes') === undefined && gpu ? Infinity : number(str(values, 'minutes'), 3, '--minutes', { above: 0 });
    const batchSize = integer(str(values, 'batch'), gpu ? 128 : 16, '--batch');
    const sampleSteps = integer(str(values, 'sample-steps'), 25, '--sample-steps');
    const guidance = number(str(values, 'guidance'), DEMO_GUIDANCE, '--guidance', { min: 0 });
    const restoreSteps = integer(str(values, 'restore-steps'), 20, '--restore-steps');
    const seed = integer(str(values, 'seed'), 0, '--seed', 0);
    const emaFlag = str(values, 'ema');
    if (emaFlag !== undefined && (emaFlag.trim() === '' || !(Number(emaFlag) >= 0 && Number(emaFlag) < 1)))
      throw new UsageError(`--ema: expected a decay in [0, 1), got "${emaFlag}"`);
    const usePrior = !values['no-prior'];
    const priorFlag = str(values, 'prior');
    if (priorFlag !== undefined && !usePrior) throw new UsageError('demo: --prior and --no-prior exclude each other');
    if (priorFlag !== undefined && !existsSync(priorFlag)) throw new UsageError(`demo: --prior ${priorFlag}: no such file`);
    const prior = usePrior ? (priorFlag ?? demoPriorPath()) : undefined;
    if (usePrior && !prior)
      throw new UsageError(
        `demo: the prior lib/assets/${DEMO_PRIOR} is missing (an incomplete installation?); --no-prior trains from scratch`,
      );

    // The resolution is the prior's (its file says which network it holds: 32x32 as shipped, 16x16 for
    // the earlier, smaller prior); from scratch, --resolution (default 16 on the CPU, where training from
    // scratch is slow, 32 on a GPU).
    const priorCheckpoint = prior ? await readCheckpoint(prior) : undefined;
    if (priorCheckpoint && (priorCheckpoint.config.inChannels !== 1 || priorCheckpoint.config.outChannels !== 1))
      throw new UsageError(
        `demo: the prior ${prior} is a ${priorCheckpoint.config.inChannels}-channel network; the demo's images are greyscale (1 channel)`,
      );
    const asked = str(values, 'resolution');
    const resolution = (v: number, what: string) => {
      try {
        return demoResolution(v, what);
      } catch (e) {
        throw new UsageError(`demo: ${(e as Error).message}`);
      }
    };
    const askedR = asked === undefined ? undefined : resolution(integer(asked, 16, '--resolution'), '--resolution');
    const r = priorCheckpoint ? resolution(priorCheckpoint.config.resolution, prior!) : (askedR ?? (gpu ? 32 : 16));
    if (askedR !== undefined && askedR !== r)
      throw new UsageError(
        `demo: --resolution ${askedR}, but the prior ${prior} is a ${r}x${r} network; --no-prior trains from scratch at --resolution`,
      );
    const lr = number(str(values, 'lr'), prior ? 1e-4 : 1e-3, '--lr', { above: 0 });
    // From the prior, a long average (0.999: a 1,000-step horizon, so a CPU demo's ~550 steps keep 58 % of
    // the prior's weights in it): the prior's own EMA was 0.999, and a short one (0.98, the default until
    // 2026-12-07) let the fine-tuning's step-to-step noise into the samples, 73.9 % confident over sample
    // seeds 1-16 against 75.3 % with 0.999 from the same prior (docs/demo.md).
    const ema = emaFlag === undefined ? (prior ? 0.999 : 0.995) : Number(emaFlag);
    const config = priorCheckpoint?.config ?? demoUNet(r);
    const outDir = str(values, 'out') ?? 'kintsugi-demo';
    prepareOutputDir(outDir, '--out');
    announceDevice(device);
    const set = await demoMeasurements(1, undefined, r);
    const n = 64;
    console.log(
      `demo: ${set.count} Fashion-MNIST images at ${r}x${r}, corrupted (${DEMO_CORRUPTION.spec}, sigma0 ${DEMO_CORRUPTION.sigma0}); the model sees only these. ` +
        `${prior ? `Fine-tuning ${priorFlag === undefined ? 'the shipped prior' : `the prior ${prior}`}` : 'Training from scratch'}: GSURE, batch ${batchSize} on ${device}, ${steps} steps` +
        (Number.isFinite(minutes) ? ` or ${minutes} min, whichever comes first` : ''),
    );
    const model = new UNet(config, { device, seed: BigInt(seed) });
    // A training script's --work checkpoint holds its EMA weights beside the raw ones: the prior is the EMA.
    if (priorCheckpoint) model.setParams(priorCheckpoint.ema ?? priorCheckpoint.params);
    const schedule = gsureSchedule((await svdStatistics(set)).vMax);
    const controller = interruptible();
    // The time box: the fine-tuning stops after `minutes` like after Ctrl-C, but the demo goes on.
    const budget = new AbortController();
    const timer = Number.isFinite(minutes) ? setTimeout(() => budget.abort(), minutes * 60_000) : undefined;
    const checkpoint = join(outDir, 'checkpoint.safetensors');
    const result = await trainGsure({
      model,
      measurements: set,
      schedule,
      steps,
      batchSize,
      seed,
      optimizer: {
        // From the prior, a small rate: the 16x16 prior lost part of its annealing at 3e-4 (40 of 64 confident
        // and FD 112, against 42 and 106 at 1e-4), and the 32x32 one's share over 16 seeds moves by less than
        // its noise in the CPU demo's ~600 steps at 1e-4 (74.3 % before, 73.4 % after; docs/demo.md).
        lr,
        warmupSteps: Math.min(50, Math.floor(steps / 10)),
        maxGradNorm: 1,
      },
      emaDecay: ema,
      signal: AbortSignal.any([controller.signal, budget.signal]),
      onProgress: progressPrinter('demo train'),
      progressEvery: gpu ? 50 : 2, // a line at least every 10 s (progressPrinter) needs reports that often
      checkpoint: { path: checkpoint, every: steps },
    });
    clearTimeout(timer);
    writeFileSync(
      join(outDir, 'loss.svg'),
      lossCurveSvg(result.losses, { title: `GSURE loss, fine-tuning (batch ${batchSize}, ${device})`, logY: true, smooth: 0.9 }),
    );
    if (result.aborted && controller.signal.aborted) {
      console.log(`stopped at step ${result.step}; checkpoint: ${checkpoint}`);
      model.dispose();
      return;
    }

    const progress = stepPrinter('demo sampling: DDIM step');
    console.log(
      `fine-tuned for ${result.step} steps${budget.signal.aborted ? ` (the ${minutes} min time box)` : ''}; sampling 64 images` +
        (guidance === 1 ? '' : ` with uniform-attention guidance ${guidance} (two network passes a step)`),
    );
    const guided = await uniformAttentionGuidance(model, guidance, result.ema?.params);
    const x = await sample(guided.denoiser, {
      schedule,
      prediction: 'x0',
      shape: [n, 1, r, r],
      device,
      method: 'ddim',
      steps: sampleSteps,
      clip: [-1, 1],
      generator: new Generator(1),
      signal: controller.signal,
      onStep: (i, total) => progress(i, total),
    }).finally(() => guided.dispose());
    const samples = await x.toArray();
    x.dispose();
    await writeNpy(join(outDir, 'samples.npy'), { data: samples, shape: [n, 1, r, r] });

    // The third panel: the same model restores the 64 corrupted inputs shown on the left (DDRM, one
    // posterior sample each, with the measurement noise sigma0 the data was made with).
    if (result.ema) model.setParams(await result.ema.params.toArray());
    const restoreProgress = stepPrinter('demo restoring the inputs: DDRM step');
    const rows = Array.from({ length: n }, (_, i) => i);
    const { op, y } = set.batch(rows, { device });
    let restored: Float32Array;
    try {
      restored = (
        await restore(unetPrior(model, schedule, 'x0'), op, y, {
          method: 'ddrm',
          sigma0: set.sigma0,
          steps: restoreSteps,
          clip: [-1, 1],
          batchSize: n,
          seed: 2,
          signal: controller.signal,
          onProgress: (i, total) => restoreProgress(i, total),
        })
      ).mean;
    } finally {
      op.dispose();
      y.dispose();
      model.dispose();
    }
    await writeNpy(join(outDir, 'restored.npy'), { data: restored, shape: [n, 1, r, r] });

    // The picture: the first 64 corrupted inputs (missing pixels in red) and the 64 samples, at 32x32.
    const inputs = set.measurements.subarray(0, n * r * r);
    const mask = (set.params as { mask: Uint8Array }).mask.subarray(0, n * r * r);
    const big = (images: Float32Array) => atClassifierSize(images, n, r);
    const panels: Panel[] = [
      { images: big(inputs), observed: Uint8Array.from(big(Float32Array.from(mask))) },
      { images: big(samples) },
      { images: big(restored) },
    ];
    await writePng(join(outDir, 'demo.png'), demoPicture(panels, n));

    console.log('measuring the samples with the shipped Fashion-MNIST classifier ...');
    const reference = await loadFashionMnist({ source: 'subset' });
    const m = reference.shape[0];
    const classifierDevice = device.startsWith('cuda') ? device : 'cpu';
    const q = await demoQuality(big(samples), n, atClassifierSize(atResolution(reference.images, m, r), m, r), m, 0.8, classifierDevice);
    const restoredConfident = await confidentShare(big(restored), n, 0.8, classifierDevice);
    const seconds = (performance.now() - began) / 1000;
    const summary = {
      seconds: Math.round(seconds),
      device,
      steps: result.step,
      minutes: Number.isFinite(minutes) ? minutes : null,
      batchSize,
      lr,
      emaDecay: ema,
      prior: prior !== undefined,
      resolution: r,
      sampleSteps,
      guidance,
      restoreSteps,
      confidentShare: q.confident,
      confidenceThreshold: q.threshold,
      restoredConfidentShare: restoredConfident,
      fdFmnist: q.fd,
      fdReference: `the ${m} shipped images ${r === 16 ? 'averaged to 16x16' : 'at 32x32'}`,
    };
    writeFileSync(join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    console.log(
      `samples classified as a garment with confidence >= ${q.threshold}: ${Math.round(q.confident * n)} of ${n} (${(100 * q.confident).toFixed(0)} %)`,
    );
    console.log(
      `FD-FMNIST of the 64 samples against the ${m} shipped images at ${r}x${r}: ${q.fd.toFixed(2)} (lower is better; 64 samples bias it upwards)`,
    );
    console.log(`restorations of the 64 inputs classified with confidence >= ${q.threshold}: ${Math.round(restoredConfident * n)} of ${n}`);
    console.log(
      `wrote ${join(outDir, 'demo.png')} (left: corrupted inputs, missing pixels in red; middle: samples; right: restorations of the inputs), ` +
        `samples.npy, restored.npy, loss.svg, summary.json in ${duration(seconds)}`,
    );
  },
});
