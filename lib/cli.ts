#!/usr/bin/env node
// The command line. Until the trainers land (issue 4) it reports what the machine offers and runs a
// short demonstration of the native layer on every device.
import { buildInfo, cudaStatus, defaultDevice, devices } from './device.ts';
import { memoryStats, synchronize } from './memory.ts';
import { Generator, philoxBits } from './random.ts';
import { randn } from './tensor.ts';

const USAGE = `usage: kintsugi <command>

commands:
  info    the build, the CUDA status and every device
  demo    draw from the counter-based generator on each device, check it against the published
          Philox4x32-10 known answers, and time a few operations
  help    this text

environment:
  KINTSUGI_DEVICE=cpu|cuda|cuda:N   the default device (else cuda:0 when present, else cpu)
  KINTSUGI_SEED=N                   the seed of the default generator`;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

function info(): void {
  const b = buildInfo();
  console.log(`kintsugi addon: ${b.binary}`);
  console.log(`  N-API ${b.napiVersion}, compiler ${b.compiler}, CUDA backend: ${b.cuda ? `yes (${b.cudaArchitectures})` : 'no'}`);
  const s = cudaStatus();
  console.log(s.deviceCount > 0 ? `CUDA: ${s.deviceCount} device(s), driver ${s.driverVersion}` : `CUDA: unavailable: ${s.reason}`);
  for (const d of devices()) {
    const cc = d.computeCapability ? `, compute capability ${d.computeCapability}` : '';
    console.log(`  ${d.device.padEnd(7)} ${d.name} (${gib(d.totalMemory)}, ${d.multiprocessors} ${d.type === 'cpu' ? 'threads' : 'SMs'}${cc})`);
  }
  console.log(`default device: ${defaultDevice()}`);
}

async function demo(): Promise<void> {
  info();
  const known = [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8];
  for (const { device } of devices()) {
    const bits = await philoxBits(4, { seed: 0, offset: 0, stream: 0 }, { device });
    const ok = bits.every((x, i) => x === known[i]);
    console.log(`\n[${device}] Philox4x32-10 known-answer vector: ${ok ? 'ok' : `MISMATCH ${[...bits].map((x) => x.toString(16))}`}`);
    if (!ok) process.exitCode = 1;
    const n = 1 << 24;
    const start = performance.now();
    const x = randn([n], { generator: new Generator(2026), device });
    const half = x.scale(0.5);
    const y = half.add(x);
    half.dispose(); // freed once the add has run
    const s = await y.sum().toArray();
    const ms = performance.now() - start;
    await synchronize(device);
    const mean = s[0]! / n / 1.5;
    console.log(`[${device}] randn + scale + add + sum over ${n} values: ${ms.toFixed(1)} ms; sample mean ${mean.toFixed(5)} (expected 0 +- ${(3 / Math.sqrt(n)).toFixed(5)})`);
    console.log(`[${device}] memory in use ${(memoryStats(device).inUse / 2 ** 20).toFixed(0)} MiB, peak ${(memoryStats(device).peak / 2 ** 20).toFixed(0)} MiB`);
    x.dispose();
    y.dispose();
  }
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'help';
  if (command === 'info') return info();
  if (command === 'demo') return demo();
  if (command === 'help' || command === '--help' || command === '-h') return console.log(USAGE);
  console.error(`kintsugi: unknown command "${command}"\n\n${USAGE}`);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(`kintsugi: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
