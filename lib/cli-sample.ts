// `kintsugi sample`: images from a checkpoint (or a bootstrap manifest) into a PNG grid and a .npy
// array of the same samples, which `kintsugi eval --samples` reads.
import { ambientDenoiser, ambientLawOf, ambientSamplingMasks } from './ambient/sample.ts';
import { loadUNet, readCheckpoint } from './checkpoint.ts';
import { checkWritableFile, defineCommand, integer, number, stepPrinter, str, UsageError } from './cli-common.ts';
import { loadBootstrap } from './bootstrap/run.ts';
import { gridToPng, writePng } from './data/png.ts';
import { writeNpy } from './data/npy.ts';
import { defaultDevice } from './device.ts';
import { Generator } from './random.ts';
import { sample, TIMESTEP_SPACINGS, unetDenoiser, type Denoiser, type TimestepSpacing } from './sample.ts';
import { NoiseSchedule, type Prediction } from './schedule.ts';
import { tensor } from './tensor.ts';

const HELP = `usage: kintsugi sample --checkpoint FILE [options]

Writes the samples twice: a PNG grid (--out) and the values as float32 [N, C, H, W] in the .npy file
of the same name, which \`kintsugi eval --samples\` reads.

options:
  --checkpoint FILE a checkpoint from \`kintsugi train\`, or DIR/bootstrap.json from --method bootstrap
  --n N             images (default 64)
  --method M        ddim (default) | ddpm (ancestral: every one of the 1,000 steps, or --steps N of them) | heun
  --steps N         sampling steps (default 50; ddpm: 1,000)
  --eta X           DDIM eta in [0, 1] (default 0)
  --spacing S       linspace (default: 0 .. 999 evenly) | leading (0, 100, .., 900) | trailing (99, .., 999),
                    the time steps of a sampler with fewer steps than the schedule (docs/guide.md)
  --seed S          seed (default 0)
  --no-ema          use the raw weights instead of the EMA
  --device D        cpu | cuda | cuda:N
  --out FILE        PNG grid (default samples.png); the samples go to FILE with .npy for .png

examples:
  kintsugi sample --checkpoint fmnist.safetensors --n 100 --out grid.png
  kintsugi eval --samples grid.npy --ref fashion-mnist`;

/** The .npy written next to a PNG: a.png -> a.npy, a -> a.npy. */
export const npyPathOf = (png: string) => png.replace(/\.png$/i, '') + '.npy';

export const sampleCommand = defineCommand('sample', {
  summary: 'draw images from a checkpoint into a PNG grid and a .npy array',
  help: HELP,
  options: {
    checkpoint: { type: 'string' },
    n: { type: 'string' },
    method: { type: 'string' },
    steps: { type: 'string' },
    eta: { type: 'string' },
    seed: { type: 'string' },
    'no-ema': { type: 'boolean' },
    device: { type: 'string' },
    out: { type: 'string' },
    spacing: { type: 'string' },
  },
  async run(values) {
    const s = (k: string) => str(values, k);
    const path = s('checkpoint');
    if (!path) throw new UsageError('sample: --checkpoint FILE is required (a file written by `kintsugi train`)');
    const method = s('method') ?? 'ddim';
    if (method !== 'ddim' && method !== 'ddpm' && method !== 'heun')
      throw new UsageError(`--method: expected ddim, ddpm or heun, got "${method}"`);
    if (method !== 'ddim' && s('eta') !== undefined)
      throw new UsageError(`--eta: only DDIM takes an eta (ddpm is eta 1, heun is deterministic), got --method ${method}`);
    const spacing = (s('spacing') ?? 'linspace') as TimestepSpacing;
    if (!TIMESTEP_SPACINGS.includes(spacing)) throw new UsageError(`--spacing: expected ${TIMESTEP_SPACINGS.join(', ')}, got "${spacing}"`);
    const n = integer(s('n'), 64, '--n');
    const eta = number(s('eta'), 0, '--eta', { min: 0, max: 1 });
    const seed = integer(s('seed'), 0, '--seed', 0);
    const out = s('out') ?? 'samples.png';
    const npy = npyPathOf(out);
    checkWritableFile(out, '--out');
    checkWritableFile(npy, '--out');
    const device = s('device') ?? defaultDevice();

    let denoiser: Denoiser;
    let schedule: NoiseSchedule;
    let prediction: Prediction;
    let shape: [number, number, number];
    let dispose: () => void;
    if (path.toLowerCase().endsWith('.json')) {
      const boot = await loadBootstrap(path, { device });
      ({ denoiser } = boot);
      schedule = boot.views.schedule;
      prediction = 'x0';
      shape = boot.imageShape;
      dispose = () => boot.dispose();
    } else {
      const ck = await readCheckpoint(path);
      const model = await loadUNet(path, { device, useEma: !values['no-ema'] && ck.ema !== undefined });
      schedule = new NoiseSchedule((ck.schedule as { kind: 'linear' | 'cosine' } | null) ?? { kind: 'linear' });
      prediction = ck.prediction;
      shape = [model.config.outChannels, model.config.resolution, model.config.resolution];
      // Ambient Diffusion (docs/ambient.md): fixed further-corrupted masks, one per sample, drawn from --seed.
      const law = ambientLawOf(ck.metadata, `--checkpoint ${path}`);
      if (law) {
        const masks = tensor(ambientSamplingMasks(n, shape, law, seed), [n, ...shape], { device });
        denoiser = ambientDenoiser(model, masks);
        dispose = () => (masks.dispose(), model.dispose());
      } else {
        denoiser = unetDenoiser(model);
        dispose = () => model.dispose();
      }
    }
    // DDPM on a subsequence of N steps is DDIM with eta = 1 on that grid (the posterior variance at each step).
    const T = schedule.steps;
    const steps = integer(s('steps'), method === 'ddpm' ? T : 50, '--steps');
    if (steps > T) throw new UsageError(`--steps: expected at most ${T} (the schedule's steps), got ${steps}`);
    const [c, r] = shape;
    const progress = stepPrinter('sample step');
    let x;
    try {
      x = await sample(denoiser, {
        schedule,
        prediction,
        shape: [n, c, r, r],
        device,
        method: method === 'ddpm' ? 'ddim' : method,
        steps,
        spacing,
        eta: method === 'ddpm' ? 1 : eta,
        clip: [-1, 1],
        generator: new Generator(seed),
        onStep: (i, total) => progress(i, total),
      });
    } finally {
      dispose();
    }
    const values32 = await x.toArray();
    x.dispose();
    await writeNpy(npy, { data: values32, shape: [n, c, r, r] });
    if (c === 2) {
      // Complex images (k-space data as two channels): the PNG shows the magnitude, scaled so the
      // grid's largest maps to white (as MRI viewers do); the .npy holds both channels.
      const mag = new Float32Array(n * r * r);
      let max = 1e-12;
      for (let b = 0; b < n; b++)
        for (let i = 0; i < r * r; i++) {
          const [re, im] = [values32[2 * b * r * r + i]!, values32[(2 * b + 1) * r * r + i]!];
          mag[b * r * r + i] = Math.hypot(re, im);
          max = Math.max(max, mag[b * r * r + i]!);
        }
      for (let i = 0; i < mag.length; i++) mag[i] = (2 * mag[i]!) / max - 1;
      await writePng(out, gridToPng(mag, [n, 1, r, r]));
      console.log(
        `wrote ${out} (magnitudes of ${n} complex samples, ${method} ${steps} steps) and ${npy} (the samples, real and imaginary channels)`,
      );
      return;
    }
    await writePng(out, gridToPng(values32, [n, c, r, r]));
    console.log(`wrote ${out} and ${npy} (${n} samples, ${method} ${steps} steps)`);
  },
});
