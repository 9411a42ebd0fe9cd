#!/usr/bin/env node
// The command line. COMMANDS is its table: a command is a summary, a --help text and a function of its
// arguments (lib/cli-common.ts builds them from declared options); adding one is one line here. Long work
// shows progress, Ctrl-C and SIGTERM save and exit 130, mistakes in the command line exit 2.
import { buildInfo, cudaStatus, defaultDevice, devices } from './device.ts';
import { type Command, defineCommand, integer, number, checkWritableFile, str, UsageError, wasInterrupted } from './cli-common.ts';
import { trainCommand } from './cli-train.ts';
import { sampleCommand } from './cli-sample.ts';
import { corruptDataset, saveMeasurements } from './corruption/dataset.ts';
import { demoCommand } from './demo/cli.ts';
import { diffemCommand } from './diffem/cli.ts';
import { EVAL_HELP, evalCommand } from './metrics/eval-command.ts';
import { mixtureCommand, scoreErrorCommand } from './score-error/cli.ts';
import { RESTORE_HELP, restoreCommand } from './restore/cli.ts';
import { TRANSFER_HELP } from './transfer/help.ts';
import { loadData, parseCorruptionFlag } from './cli-train.ts';

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

const devicesCommand = defineCommand('devices', {
  summary: 'the build, the CUDA status and every device',
  help: 'usage: kintsugi devices\n\nPrints the addon in use, whether CUDA is available (and why not), and every device.',
  options: {},
  run() {
    const b = buildInfo();
    console.log(`kintsugi addon: ${b.binary}`);
    console.log(`  N-API ${b.napiVersion}, compiler ${b.compiler}, CUDA backend: ${b.cuda ? `yes (${b.cudaArchitectures})` : 'no'}`);
    console.log(`  CPU kernels: ${b.cpuIsa} (this processor supports ${b.cpuIsaSupported}; KINTSUGI_CPU_ISA forces a lower one)`);
    const s = cudaStatus();
    console.log(s.deviceCount > 0 ? `CUDA: ${s.deviceCount} device(s), driver ${s.driverVersion}` : `CUDA: unavailable: ${s.reason}`);
    for (const d of devices()) {
      const cc = d.computeCapability ? `, compute capability ${d.computeCapability}` : '';
      console.log(
        `  ${d.device.padEnd(7)} ${d.name} (${gib(d.totalMemory)}, ${d.multiprocessors} ${d.type === 'cpu' ? 'threads' : 'SMs'}${cc})`,
      );
    }
    console.log(`default device: ${defaultDevice()}`);
  },
});

const corruptCommand = defineCommand('corrupt', {
  summary: 'corrupt a clean data set reproducibly (masks, block averaging, k-space lines) into a measurement file',
  help: `usage: kintsugi corrupt --corruption C [options]

Corrupts a clean data set reproducibly and writes a measurement file (docs/corruption.md): the
measurements, each sample's mask or k-space lines, sigma0 and the seed.

options:
  --corruption C    mask:patch=4,p=0.4 | mask:p=0.3 | blockaverage:k=2 | fourier:center=8,random=8
  --sigma0 X        measurement noise (default 0.02)
  --data SRC        subset (default) | debian | DIR with the IDX files
  --seed S          seed of the masks and the noise (default 1)
  --out FILE        measurement file (default measurements.safetensors)

example:
  kintsugi corrupt --data debian --corruption mask:patch=4,p=0.4 --sigma0 0.02 --out fmnist-p04.safetensors`,
  options: {
    corruption: { type: 'string' },
    sigma0: { type: 'string' },
    data: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
  },
  async run(values) {
    const spec = str(values, 'corruption');
    if (!spec) throw new UsageError('corrupt: --corruption SPEC is required, e.g. mask:patch=4,p=0.4 (kintsugi corrupt --help)');
    const corruption = parseCorruptionFlag(spec, '--corruption');
    const sigma0 = number(str(values, 'sigma0'), 0.02, '--sigma0', { min: 0 });
    const seed = integer(str(values, 'seed'), 1, '--seed', 0);
    const out = str(values, 'out') ?? 'measurements.safetensors';
    checkWritableFile(out, '--out');
    const data = await loadData(str(values, 'data') ?? 'subset');
    const set = await corruptDataset(data.images, data.shape, { corruption, sigma0, seed, device: 'cpu' });
    await saveMeasurements(out, set);
    console.log(
      `wrote ${out}: ${set.count} ${set.kind} measurements of ${JSON.stringify(set.measurementShape)} from ${data.file} (${spec}, sigma0 ${sigma0}, seed ${seed})`,
    );
  },
});

/** The commands, in the order `kintsugi --help` lists them. */
const COMMANDS: Record<string, Command> = {
  demo: demoCommand,
  train: trainCommand,
  corrupt: corruptCommand,
  sample: sampleCommand,
  devices: devicesCommand,
  eval: { summary: 'FD-FMNIST, precision/recall and SWD of samples against reference images', help: EVAL_HELP, run: evalCommand },
  diffem: diffemCommand,
  mixture: mixtureCommand,
  'score-error': scoreErrorCommand,
  restore: {
    summary: 'restore measurements with a trained prior: posterior samples, mean and uncertainty (DDRM, DPS, PiGDM, MMPS)',
    help: RESTORE_HELP,
    run: restoreCommand,
  },
  // Loaded when used: the transfer method's modules are not needed by the other commands.
  transfer: {
    summary: 'pretrain a shared condition encoder on source tasks, fine-tune a new head on few target pairs',
    help: TRANSFER_HELP,
    run: async (argv) => (await import('./transfer/cli.ts')).transferCommand(argv),
  },
};
const ALIASES: Record<string, string> = { info: 'devices' };

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `kintsugi — diffusion models trained from broken data, on CUDA or the CPU

usage: kintsugi <command> [options]      (kintsugi <command> --help for each)

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join('\n')}

environment:
  KINTSUGI_DEVICE=cpu|cuda|cuda:N   the default device (else cuda:0 when present, else cpu)`;
}

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    const topic = rest[0];
    if (topic === 'bootstrap') return trainCommand.run(['--method', 'bootstrap', '--help']); // `kintsugi help bootstrap`
    return console.log(topic && COMMANDS[topic] ? COMMANDS[topic].help : mainHelp());
  }
  const command = COMMANDS[ALIASES[first] ?? first];
  if (!command) {
    console.error(`kintsugi: unknown command "${first}"\n\n${mainHelp()}`);
    process.exitCode = 2;
    return;
  }
  // Commands that parse their own options (eval) still answer -h/--help here.
  if (command !== trainCommand && (rest.includes('--help') || rest.includes('-h'))) return console.log(command.help);
  await command.run(rest);
}

main(process.argv.slice(2)).then(
  () => {
    if (wasInterrupted()) process.exitCode = 130; // stopped by Ctrl-C or SIGTERM, after saving: scripts can tell
  },
  (e: unknown) => {
    const code = (e as { code?: string }).code ?? '';
    const usage = e instanceof UsageError || code.startsWith('ERR_PARSE_ARGS');
    console.error(`kintsugi: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = usage ? 2 : 1;
  },
);
