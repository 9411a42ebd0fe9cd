// The benchmark of GPU first light (bench/first-light/run.sh): one row at a time, each appended to
// --out as a JSON line the moment it ends, so a run stopped by its timeout keeps every finished row.
// kintsugi and PyTorch eager on the same network (test/interop/unet_torch.py) in the same command:
//   train   the training step (forward, MSE, backward, AdamW) at --batch
//   sample  DDIM sampling, --ddim-steps steps at --sample-batch
//   gsure   kintsugi's GSURE step at --batch (no PyTorch form in this repository), with its ratio to
//           the supervised step of the same run
// then torch.compile's training step and sampling, each only if --deadline leaves --compile-s seconds
// for it (a cold compile takes about a minute). A row that cannot run says why (status "skipped").
//   node bench/first-light/bench.mjs --out FILE [--device cuda:0] [--preset fmnist32] [--batch 128]
//     [--sample-batch 256] [--ddim-steps 50] [--steps 20] [--warmup 3] [--deadline EPOCH_S]
//     [--compile auto|off] [--compile-s 120]
import { appendFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { arg, runInfo, runPython, torchPython } from '../lib/common.mjs';
import { timeGsureStep, timeSampling, timeTrainStep } from '../lib/step.mjs';

const device = arg('device', process.env.KINTSUGI_DEVICE ?? 'cuda:0');
const preset = arg('preset', 'fmnist32');
const batch = Number(arg('batch', 128));
const sampleBatch = Number(arg('sample-batch', 256));
const ddimSteps = Number(arg('ddim-steps', 50));
const steps = Number(arg('steps', 20));
const warmup = Number(arg('warmup', 3));
const deadline = Number(arg('deadline', Infinity)); // seconds since the epoch
const compile = arg('compile', 'auto');
const compileSeconds = Number(arg('compile-s', 120));
const outFile = arg('out', null);
if (!outFile) throw new Error('bench.mjs: --out FILE is required (rows are appended to it as they finish)');
const torchDevice = device.startsWith('cuda') ? 'cuda' : 'cpu';
const threads = availableParallelism();
const info = runInfo(device);
const left = () => deadline - Date.now() / 1000;
const log = (...a) => console.error(`[first-light bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

function emit(row) {
  // The CPU allocator does not see the network's internal buffers: no peak there (as bench/cpu.mjs).
  if (device === 'cpu' && 'peak_bytes' in row) row.peak_bytes = null;
  const full = { ...row, device, deviceName: info.deviceName, date: new Date().toISOString(), commit: info.commit };
  appendFileSync(outFile, JSON.stringify(full) + '\n');
  log(row.row, row.status, row.status === 'passed' ? (row.median_ms ?? row.ms)?.toFixed?.(2) + ' ms' : (row.reason ?? row.error ?? ''));
}

/** Runs one row unless fewer than `needs` seconds are left; errors become a failed row. */
async function row(name, needs, fn) {
  if (left() < needs)
    return emit({ row: name, status: 'skipped', reason: `not enough time left: ${Math.max(0, left()).toFixed(0)} s < ${needs} s` });
  const t0 = performance.now();
  try {
    const r = await fn();
    const wall_s = (performance.now() - t0) / 1000;
    if (r.error) emit({ row: name, status: 'failed', wall_s, error: r.error });
    else if (r.skipped) emit({ row: name, status: 'skipped', wall_s, reason: r.skipped });
    else emit({ row: name, status: 'passed', wall_s, ...r });
  } catch (e) {
    emit({ row: name, status: 'failed', wall_s: (performance.now() - t0) / 1000, error: String(e?.message ?? e).split('\n')[0] });
  }
}

const torch = torchPython();
log(
  `device ${device} (${info.deviceName}), preset ${preset}, batch ${batch}, sampling ${ddimSteps} DDIM steps at ${sampleBatch};`,
  torch.python ? `PyTorch ${torch.torch} from ${torch.python}` : `no PyTorch (${torch.tried.join('; ')})`,
);
const noTorch = torch.python ? null : `no Python with PyTorch here (tried ${torch.tried.join('; ')})`;
// A PyTorch child gets what is left before the deadline (minus a little for the rows' bookkeeping).
const pyTimeout = () => Math.max(1000, Math.floor((left() - 5) * 1000)); // child_process wants whole milliseconds
const strip = ({ times_ms, ...rest }) => rest;

let supervised = null;
await row(`train kintsugi ${preset} b${batch}`, 10, async () => {
  const r = strip(await timeTrainStep({ device, preset, batch, steps, warmup }));
  supervised = r.median_ms;
  return { impl: 'kintsugi', ...r };
});
await row(`train pytorch eager fp32 ${preset} b${batch}`, 20, async () =>
  noTorch
    ? { skipped: noTorch }
    : strip(runPython('torch_step.py', [preset, batch, steps, threads, torchDevice, 'eager', 'fp32'], pyTimeout())),
);
await row(`sample kintsugi ddim${ddimSteps} ${preset} b${sampleBatch}`, 10, async () => ({
  impl: 'kintsugi',
  ...(await timeSampling({ device, preset, batch: sampleBatch, steps: ddimSteps })),
}));
await row(`sample pytorch eager fp32 ddim${ddimSteps} ${preset} b${sampleBatch}`, 20, async () =>
  noTorch
    ? { skipped: noTorch }
    : runPython('torch_sample.py', [preset, sampleBatch, ddimSteps, 'eager', 'fp32', torchDevice], pyTimeout()),
);
await row(`gsure kintsugi ${preset} b${batch}`, 15, async () => {
  const r = strip(await timeGsureStep({ device, preset, batch, steps, warmup }));
  return { impl: 'kintsugi', ...r, ratio_to_supervised: supervised ? r.median_ms / supervised : null };
});
for (const [name, script, args] of [
  [`train pytorch compile fp32 ${preset} b${batch}`, 'torch_step.py', [preset, batch, steps, threads, torchDevice, 'compile', 'fp32']],
  [
    `sample pytorch compile fp32 ddim${ddimSteps} ${preset} b${sampleBatch}`,
    'torch_sample.py',
    [preset, sampleBatch, ddimSteps, 'compile', 'fp32', torchDevice],
  ],
]) {
  if (compile === 'off') emit({ row: name, status: 'skipped', reason: 'torch.compile is off for this run (--compile off)' });
  else await row(name, compileSeconds, async () => (noTorch ? { skipped: noTorch } : strip(runPython(script, args, pyTimeout()))));
}
log('done');
