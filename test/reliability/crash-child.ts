// The process that test/reliability/crash.test.ts and scripts/crash-kill.ts kill with SIGKILL at random
// moments. It prints "ready" once its imports are done (so the kill lands in the work, not in Node's
// start-up), then does one kind of state-writing work, resuming from whatever an earlier, killed run
// left in DIR, and prints "done" when the work is complete:
//   train DIR         a small UNet trained for TRAIN_STEPS steps with a checkpoint after every step
//   measurements DIR  the same file rewritten forever, alternating between two measurement sets
//   diffem DIR        DiffEM_ROUNDS rounds of DiffEM (checkpoints inside rounds, state between them)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { saveMeasurements } from '../../lib/corruption/dataset.ts';
import { corruptWithMasks, diffem } from '../../lib/diffem/em.ts';
import { train } from '../../lib/train.ts';
import { UNet } from '../../lib/unet.ts';
import { blobs } from '../helpers.ts';
import { CRASH_CONFIG, DIFFEM_CONFIG, DIFFEM_ROUNDS, measurementSet, TRAIN_STEPS } from './crash-work.ts';

const [mode, dir] = process.argv.slice(2) as [string, string];
process.stdout.write('ready\n');

if (mode === 'train') {
  const path = join(dir, 'ckpt.safetensors');
  const model = new UNet(CRASH_CONFIG, { device: 'cpu', seed: 11 });
  const r = await train({
    model,
    data: blobs(16),
    steps: TRAIN_STEPS,
    batchSize: 4,
    seed: 3,
    optimizer: { lr: 1e-3 },
    emaDecay: 0.9,
    checkpoint: { path, every: 1 },
    resume: existsSync(path) ? path : undefined,
  });
  r.optimizer.dispose();
  r.ema?.dispose();
  model.dispose();
} else if (mode === 'measurements') {
  const sets = [measurementSet(0), measurementSet(1)];
  for (let i = 0; ; i++) await saveMeasurements(join(dir, 'set.safetensors'), sets[i % 2]!);
} else if (mode === 'diffem') {
  const { images, shape } = blobs(8);
  const corruption = { p: 0.5, patch: 2, sigma0: 0.05 };
  const observations = await corruptWithMasks(images, shape, corruption, 9n);
  const model = new UNet(DIFFEM_CONFIG, { device: 'cpu', seed: 4 });
  await diffem({
    model,
    observations,
    corruption,
    initial: observations.y,
    rounds: DIFFEM_ROUNDS,
    stepsPerRound: 4,
    batchSize: 4,
    optimizer: { lr: 1e-3 },
    sampler: { method: 'ancestral', steps: 3, batchSize: 8 },
    seed: 5,
    dir,
  });
  model.dispose();
} else throw new TypeError(`mode: expected train, measurements or diffem, got ${mode}`);
process.stdout.write('done\n');
