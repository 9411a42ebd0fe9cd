// Tables from benchmark results (bench/results/*.json), and the benchmark section of docs/benchmarks.md rebuilt
// from the newest CPU and GPU results:  node bench/report.mjs [--readme]
// The section lies between the markers <!-- bench:begin --> and <!-- bench:end -->.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const f = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toFixed(digits));
const mib = (b) => (b ? `${(b / 2 ** 20).toFixed(0)} MiB` : '—');

export function markdownTables(r) {
  const lines = [];
  const where = `${r.deviceName} (${r.device})${r.cuda?.driverVersion ? `, driver ${r.cuda.driverVersion}` : ''}, ${r.date.slice(0, 10)}, commit ${r.commit ?? 'unknown'}`;
  lines.push(`Training step (forward, MSE, backward, AdamW), batch ${r.batch}, ${where}:`, '');
  lines.push(
    '| preset | kintsugi ms/step | img/s | TFLOP/s | peak memory | PyTorch (same run) | speed-up vs PyTorch best (>1: kintsugi faster) |',
  );
  lines.push('|---|---|---|---|---|---|---|');
  for (const [preset, p] of Object.entries(r.presets)) {
    const ok = (p.torchTrain ?? []).filter((t) => !t.error);
    const torch =
      ok.map((t) => `${t.mode} ${t.precision}: ${f(t.median_ms, 1)} ms${t.peak_bytes ? ` (${mib(t.peak_bytes)})` : ''}`).join('; ') ||
      (p.torchTrain?.[0]?.error ?? '—');
    const best = ok.length ? Math.min(...ok.map((t) => t.median_ms)) : null;
    lines.push(
      `| ${preset} | ${f(p.train.median_ms, 2)} | ${f(p.train.img_per_s, 0)} | ${f(p.train.tflops, 2)} | ${mib(p.train.peak_bytes)} | ${torch} | ${best ? f(best / p.train.median_ms, 2) + 'x' : '—'} |`,
    );
  }
  const gsure = Object.entries(r.presets).filter(([, p]) => p.gsure);
  if (gsure.length) {
    lines.push(
      '',
      'GSURE step (masks 4x4 p = 0.4, sigma0 0.02; 1 probe, forward differences: 2 forward + 2 backward passes) next to the supervised step of the same run:',
      '',
    );
    lines.push('| preset | GSURE ms/step | x supervised | peak memory |', '|---|---|---|---|');
    for (const [preset, p] of gsure)
      lines.push(`| ${preset} | ${f(p.gsure.median_ms, 2)} | ${f(p.gsure.ratio_to_supervised, 2)}x | ${mib(p.gsure.peak_bytes)} |`);
  }
  const sampled = Object.entries(r.presets).filter(([, p]) => p.sample);
  if (sampled.length) {
    lines.push('', `Sampling, 50 DDIM steps, batch ${r.sampleBatch}:`, '');
    lines.push('| preset | kintsugi img/s (fp32) | peak memory | PyTorch bf16 (same run) |', '|---|---|---|---|');
    for (const [preset, p] of sampled) {
      const torch =
        (p.torchSample ?? []).map((t) => (t.error ? `${t.mode}: ${t.error}` : `${t.mode}: ${f(t.img_per_s, 0)} img/s`)).join('; ') || '—';
      lines.push(`| ${preset} | ${f(p.sample.img_per_s, 0)} | ${mib(p.sample.peak_bytes)} | ${torch} |`);
    }
  }
  for (const [preset, p] of Object.entries(r.presets)) {
    if (!p.kernels?.length) continue;
    lines.push('', `Kernels at ${preset}'s shapes (mean of queued launches):`, '', '| kernel | ms | TFLOP/s | GB/s |', '|---|---|---|---|');
    for (const k of p.kernels)
      lines.push(`| ${k.kernel} | ${f(k.ms, 3)} | ${k.tflops === null ? '' : f(k.tflops, 2)} | ${k.gbs === null ? '' : f(k.gbs, 1)} |`);
  }
  const stages = stageTables(r);
  if (stages) lines.push(stages);
  return lines.join('\n');
}

// One table per preset from gpu.mjs's `stages` (UNet.profileStages beside bench/torch_blocks.py): each
// stage's forward / backward ms, kintsugi fused BF16 and FP32, PyTorch eager bf16 autocast and fp32, and
// PyTorch bf16 over kintsugi BF16 (fwd + bwd; > 1: kintsugi faster). The sum row adds the stages; the
// pass row is PyTorch's whole forward + backward (what falls between stages included).
export function stageTables(r) {
  const lines = [];
  const pair = (s) => (s ? `${f(s.fwdMs ?? s.fwd_ms, 3)} / ${f(s.bwdMs ?? s.bwd_ms, 3)}` : '—');
  const tot = (s) => (s ? (s.fwdMs ?? s.fwd_ms) + (s.bwdMs ?? s.bwd_ms) : null);
  for (const [preset, p] of Object.entries(r.presets)) {
    const st = p.stages;
    if (!st?.kintsugi?.bf16) continue;
    const torch = (precision) => (st.torch?.[precision] && !st.torch[precision].error ? st.torch[precision] : null);
    const tb = torch('bf16'),
      tf = torch('fp32');
    const find = (res, name) => res?.stages.find((s) => s.stage === name);
    const notes = ['bf16', 'fp32']
      .filter((q) => st.torch?.[q]?.error)
      .map((q) => `PyTorch ${q}: ${st.torch[q].error}`)
      .join('; ');
    lines.push(
      '',
      `Per stage, ${preset} batch ${st.batch}, one forward + backward (median of ${st.reps}), ms forward / backward, ${r.deviceName} (${r.device}), ${r.date.slice(0, 10)}${notes ? ` (${notes})` : ''}:`,
      '',
      '| stage | kind | size | cin → cout | kintsugi bf16 | kintsugi fp32 | PyTorch eager bf16 | PyTorch eager fp32 | PyTorch bf16 / kintsugi bf16 |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    const sum = { kb: 0, kf: 0, tb: 0, tf: 0 };
    for (const [i, s] of st.kintsugi.bf16.entries()) {
      const kf = st.kintsugi.fp32?.[i],
        b = find(tb, s.stage),
        q = find(tf, s.stage);
      sum.kb += tot(s);
      sum.kf += tot(kf) ?? NaN;
      sum.tb += tot(b) ?? NaN;
      sum.tf += tot(q) ?? NaN;
      const ratio = b && tot(s) > 0 ? `${f(tot(b) / tot(s), 2)}x` : '—';
      lines.push(
        `| ${s.stage} | ${s.kind} | ${s.size || '—'} | ${s.cin} → ${s.cout} | ${pair(s)} | ${pair(kf)} | ${pair(b)} | ${pair(q)} | ${ratio} |`,
      );
    }
    lines.push(
      `| sum of stages | | | | ${f(sum.kb, 3)} | ${f(sum.kf, 3)} | ${f(sum.tb, 3)} | ${f(sum.tf, 3)} | ${tb ? `${f(sum.tb / sum.kb, 2)}x` : '—'} |`,
    );
    if (tb || tf) lines.push(`| PyTorch's whole pass | | | | | | ${f(tb?.total_ms, 3)} | ${f(tf?.total_ms, 3)} | |`);
  }
  return lines.join('\n');
}

function newest(dir, prefix) {
  // Suite results are named <suite>-<YYYY-MM-DD>.json; other JSON files there are other records.
  const files = readdirSync(dir)
    .filter((n) => new RegExp(`^${prefix}\\d{4}-\\d{2}-\\d{2}\\.json$`).test(n))
    .sort();
  return files.length ? JSON.parse(readFileSync(new URL(files.at(-1), dir), 'utf8')) : null;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = new URL('results/', import.meta.url);
  const parts = [];
  const gpu = newest(dir, 'gpu-');
  parts.push(
    gpu
      ? `### GPU\n\n${markdownTables(gpu)}`
      : '### GPU\n\nNot measured yet: no session has had the GPU machine (`node bench/gpu.mjs` there; bench/README.md).',
  );
  const cpu = newest(dir, 'cpu-');
  if (cpu) parts.push(`### CPU (\`npm run bench\`; shared 2-core machine: read the ratio)\n\n${markdownTables(cpu)}`);
  const text = parts.join('\n\n');
  if (process.argv.includes('--readme')) {
    const readme = new URL('../docs/benchmarks.md', import.meta.url);
    const s = readFileSync(readme, 'utf8');
    const re = /<!-- bench:begin -->[\s\S]*<!-- bench:end -->/;
    if (!re.test(s)) throw new Error('docs/benchmarks.md has no <!-- bench:begin --> ... <!-- bench:end --> section');
    writeFileSync(readme, s.replace(re, `<!-- bench:begin -->\n${text}\n<!-- bench:end -->`));
    console.error('docs/benchmarks.md benchmark section rebuilt');
  } else console.log(text);
}
