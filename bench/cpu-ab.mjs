// Before/after of a change in one run, 1 thread: for each round and preset, the training step of another
// checkout's kintsugi (BASE: a tree with its own build/Release and dist/, e.g. `git archive <commit>`
// extracted and built), this checkout's, and PyTorch CPU, each in its own process, in turn, so load on a
// shared machine hits all three alike. Prints one JSON line per row to stderr; writes OUT.
//   node bench/cpu-ab.mjs BASE [presets=tiny16,small32,fmnist32] [rounds=2] [steps=5] [OUT]
// Cost: about (2 x kintsugi + PyTorch) x (steps + 2 warm-up) steps per preset and round.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runPython } from './lib/common.mjs';

const here = fileURLToPath(new URL('..', import.meta.url));
const base = process.argv[2];
if (!base) throw new Error('usage: node bench/cpu-ab.mjs BASE [presets] [rounds] [steps] [OUT]');
const presets = (process.argv[3] ?? 'tiny16,small32,fmnist32').split(',');
const rounds = Number(process.argv[4] ?? 2),
  steps = Number(process.argv[5] ?? 5),
  batch = 16;
process.env.KINTSUGI_CPU_THREADS = '1';
const side = (root, preset) => {
  try {
    const out = execFileSync(
      'nice',
      ['-n', '10', process.execPath, `${root}/bench/lib/cpu-child.mjs`, 'train', preset, batch, steps, ''].map(String),
      { encoding: 'utf8' },
    );
    const t = JSON.parse(out.trim().split('\n').pop()).train;
    return { cpu_ms: t.cpu_ms_per_step, median_ms: t.median_ms, rss_peak_mb: t.rss_peak_bytes / 2 ** 20 };
  } catch (e) {
    return { error: String(e.message).split('\n')[0] };
  }
};
const rows = [];
for (let r = 0; r < rounds; r++)
  for (const preset of presets) {
    const before = side(base, preset);
    const after = side(here, preset);
    const t = runPython('torch_step.py', [preset, batch, steps, 1, 'cpu', 'eager', 'fp32']);
    const row = {
      round: r + 1,
      preset,
      before,
      after,
      torch_cpu_ms: t.cpu_ms_per_step,
      torch_median_ms: t.median_ms,
      ratio_before: t.cpu_ms_per_step / before.cpu_ms,
      ratio_after: t.cpu_ms_per_step / after.cpu_ms,
      after_vs_before: before.cpu_ms / after.cpu_ms,
    };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
writeFileSync(process.argv[6] ?? 'cpu-ab.json', JSON.stringify({ date: new Date().toISOString(), rows }, null, 1));
