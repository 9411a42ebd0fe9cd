// `kintsugi restore`: posterior samples of a trained prior given a measurement file (docs/restore.md).
// Writes the posterior mean, the K samples and the per-pixel standard deviation (.npy and PNG grids) and a
// side-by-side grid: measurement (its pseudo-inverse) | restoration | uncertainty | clean (with --clean).
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { duration, interruptible, number } from '../cli-common.ts';
import { loadUNet, readCheckpoint } from '../checkpoint.ts';
import { loadMeasurements } from '../corruption/dataset.ts';
import { gridToPng, writePng } from '../data/png.ts';
import { readNpy, writeNpy } from '../data/npy.ts';
import { defaultDevice } from '../device.ts';
import { NoiseSchedule, type Prediction, type ScheduleConfig } from '../schedule.ts';
import { unetPrior } from './denoiser.ts';
import { restore } from './restore.ts';
import { DEFAULT_STEPS, RESTORE_METHODS, type RestoreMethod } from './samplers.ts';

export const RESTORE_HELP = `usage: kintsugi restore --model M --measurements S [options]

Restores each measurement of S (\`kintsugi corrupt\`, or your own data: docs/corruption.md) with the prior
in checkpoint M (trained on clean images, or by GSURE from corrupted ones): K posterior samples per
measurement, their mean and per-pixel standard deviation (docs/restore.md).

options:
  --model FILE        checkpoint from \`kintsugi train\` (its EMA weights unless --no-ema)
  --measurements FILE measurement file (mask, block averaging or k-space lines, with its sigma0)
  --method M          ddrm | dps | pigdm | mmps (default mmps)
  --samples K         posterior samples per measurement (default 8)
  --steps N           sampler steps (defaults: ddrm ${DEFAULT_STEPS.ddrm}, dps ${DEFAULT_STEPS.dps}, pigdm ${DEFAULT_STEPS.pigdm}, mmps ${DEFAULT_STEPS.mmps})
  --eta X             DDIM eta of dps/pigdm/mmps (default 1), DDRM's eta (default 0.85)
  --zeta X            DPS step size (default 1)
  --cg N              MMPS conjugate-gradient iterations per step (default 3)
  --limit N           restore only the first N measurements
  --clean FILE.npy    the clean images [N, C, H, W], for the last column of the side-by-side grid
  --batch B           rows (measurement, sample) per batch (default 64)
  --seed S            default 0
  --no-ema            use the raw weights instead of the EMA
  --device D          cpu | cuda | cuda:N
  --out DIR           default restored: mean.npy, samples.npy, std.npy, mean.png, samples.png, std.png,
                      side-by-side.png (complex k-space data: PNGs show magnitudes)

example:
  kintsugi restore --model fmnist.safetensors --measurements masked.safetensors --method mmps --samples 16 --out restored`;

export async function restoreCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      measurements: { type: 'string' },
      method: { type: 'string' },
      samples: { type: 'string' },
      steps: { type: 'string' },
      eta: { type: 'string' },
      zeta: { type: 'string' },
      cg: { type: 'string' },
      limit: { type: 'string' },
      clean: { type: 'string' },
      batch: { type: 'string' },
      seed: { type: 'string' },
      'no-ema': { type: 'boolean' },
      device: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return console.log(RESTORE_HELP);
  if (!values.model) throw new Error('restore: --model FILE is required (a checkpoint from `kintsugi train`)');
  if (!values.measurements)
    throw new Error('restore: --measurements FILE is required (from `kintsugi corrupt`, or your own data: docs/corruption.md)');
  const method = (values.method ?? 'mmps') as RestoreMethod;
  if (!RESTORE_METHODS.includes(method)) throw new Error(`--method: expected ${RESTORE_METHODS.join(', ')}, got "${values.method}"`);
  const K = number(values.samples, 8, '--samples');
  if (!Number.isSafeInteger(K) || K < 1) throw new Error(`--samples: expected a positive integer, got ${values.samples}`);
  const out = values.out ?? 'restored';
  checkWritable(out);

  const set = await loadMeasurements(values.measurements);
  const limit = number(values.limit, set.count, '--limit');
  if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`--limit: expected a positive integer, got ${values.limit}`);
  const N = Math.min(limit, set.count);
  const [C, H, W] = set.signalShape as [number, number, number];
  const per = C * H * W;
  let clean: Float32Array | undefined;
  if (values.clean) {
    const a = await readNpy(values.clean);
    if (a.shape.length !== 4 || a.shape.slice(1).join() !== [C, H, W].join() || a.shape[0]! < N)
      throw new Error(
        `--clean ${values.clean}: expected at least ${N} images of shape [${C}, ${H}, ${W}] ([N, C, H, W]), got [${a.shape.join(', ')}]`,
      );
    clean = Float32Array.from(a.data.subarray(0, N * per));
  }
  const device = values.device ?? defaultDevice();
  const ck = await readCheckpoint(values.model);
  const net = await loadUNet(values.model, { device, useEma: !values['no-ema'] && ck.ema !== undefined });
  try {
    const { inChannels, resolution } = net.config;
    if (inChannels !== C || resolution !== H || resolution !== W)
      throw new Error(
        `--model ${values.model} takes [${inChannels}, ${resolution}, ${resolution}] images, the measurements are of signals [${C}, ${H}, ${W}]`,
      );
    const schedule = new NoiseSchedule((ck.schedule as ScheduleConfig | null) ?? { kind: 'linear' });
    const denoiser = unetPrior(net, schedule, ck.prediction as Prediction);
    const { op, y } = set.batch(
      Array.from({ length: N }, (_, i) => i),
      { device },
    );
    const controller = interruptible();
    const started = performance.now();
    let lastTenth = -1;
    console.log(`restore: ${N} ${set.kind} measurements (sigma0 ${set.sigma0}) with ${method}, ${K} samples each, on ${device}`);
    try {
      const r = await restore(denoiser, op, y, {
        method,
        sigma0: set.sigma0,
        samples: K,
        steps: values.steps === undefined ? undefined : number(values.steps, 0, '--steps'),
        eta: values.eta === undefined ? undefined : number(values.eta, 0, '--eta'),
        zeta: values.zeta === undefined ? undefined : number(values.zeta, 1, '--zeta'),
        cgIterations: number(values.cg, 3, '--cg'),
        batchSize: number(values.batch, 64, '--batch'),
        seed: number(values.seed, 0, '--seed'),
        clip: C === 2 ? undefined : [-1, 1],
        signal: controller.signal,
        onProgress: (done, total) => {
          const tenth = Math.floor((10 * done) / total);
          if (tenth !== lastTenth) console.log(`restore step ${done}/${total}  elapsed ${duration((performance.now() - started) / 1000)}`);
          lastTenth = tenth;
        },
      });
      const pinv = op.pinv(y);
      const measured = await pinv.toArray();
      pinv.dispose();
      await writeNpy(join(out, 'mean.npy'), { shape: [N, C, H, W], data: r.mean });
      await writeNpy(join(out, 'std.npy'), { shape: [N, C, H, W], data: r.std });
      await writeNpy(join(out, 'samples.npy'), { shape: [N, K, C, H, W], data: r.samples });
      const show = (v: Float32Array) => (C === 2 ? magnitudes(v, H * W) : v);
      const shown = C === 2 ? 1 : C;
      const std = C === 2 ? complexStd(r.std, H * W) : r.std;
      const stdShown = scaleToMax(std);
      await writePng(join(out, 'mean.png'), gridToPng(viewRange(show(r.mean), C), [N, shown, H, W]));
      await writePng(join(out, 'samples.png'), gridToPng(viewRange(show(r.samples), C), [N * K, shown, H, W], { columns: K }));
      await writePng(join(out, 'std.png'), gridToPng(stdShown, [N, shown, H, W]));
      const columns = [viewRange(show(measured), C), viewRange(show(r.mean), C), stdShown, ...(clean ? [viewRange(show(clean), C)] : [])];
      const tiles = new Float32Array(N * columns.length * shown * H * W);
      const size = shown * H * W;
      for (let i = 0; i < N; i++)
        columns.forEach((col, c) => tiles.set(col.subarray(i * size, (i + 1) * size), (i * columns.length + c) * size));
      await writePng(join(out, 'side-by-side.png'), gridToPng(tiles, [N * columns.length, shown, H, W], { columns: columns.length }));
      console.log(
        `wrote ${out}/: mean, std and samples (.npy), mean.png, samples.png (one row per measurement), std.png and side-by-side.png ` +
          `(measurement | restoration | uncertainty${clean ? ' | clean' : ''}) in ${duration((performance.now() - started) / 1000)}`,
      );
    } catch (e) {
      if (controller.signal.aborted) {
        console.log('interrupted: nothing written');
        process.exitCode = 130;
        return;
      }
      throw e;
    } finally {
      op.dispose();
      y.dispose();
    }
  } finally {
    net.dispose();
  }
}

/** Fails before any work when `dir` cannot be created or written. */
function checkWritable(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    const probe = join(dir, `.kintsugi-write-test-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (e) {
    throw new Error(`--out ${dir}: cannot write there (${(e as Error).message}); choose a writable directory`);
  }
}

/** |re + i im| per pixel of complex images [.., 2, H, W] → [.., 1, H, W]. */
function magnitudes(v: Float32Array, hw: number): Float32Array {
  const n = v.length / (2 * hw);
  const out = new Float32Array(n * hw);
  for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) out[b * hw + i] = Math.hypot(v[2 * b * hw + i]!, v[(2 * b + 1) * hw + i]!);
  return out;
}

/** The standard deviation of a complex pixel: √(std_re² + std_im²). */
function complexStd(s: Float32Array, hw: number): Float32Array {
  return magnitudes(s, hw);
}

/** Images in [-1, 1] as they are; magnitudes (from complex data) scaled so the largest is white. */
function viewRange(v: Float32Array, C: number): Float32Array {
  return C === 2 ? scaleToMax(v) : v;
}

/** Non-negative values to [-1, 1], the largest white (a standard deviation, a magnitude). */
function scaleToMax(v: Float32Array): Float32Array {
  let max = 1e-12;
  for (const x of v) if (x > max) max = x;
  return v.map((x) => (2 * x) / max - 1);
}
