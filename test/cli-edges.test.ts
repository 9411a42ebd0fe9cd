// The rough edges of the command line (issue "the first five minutes", part 2), one check each:
// outputs checked before any work, SIGTERM handled as Ctrl-C (exit 130 with a checkpoint), sample ->
// .npy -> eval, ddpm --steps, progress without a terminal, DiffEM --dir settings, flag-named errors.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeWriteError, duration, integer, number, parseOptions } from '../lib/cli-common.ts';
import { presets, UNet } from '../lib/unet.ts';
import { root, runCli as cli } from './support/node.ts';

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `kintsugi-${name}-`));
const quickTrain = ['--steps', '1', '--batch', '2', '--every', '1'];

describe('outputs are checked before any work', () => {
  it('a missing directory, a file in the path and a directory as --out are refused by every command, creating nothing', () => {
    const dir = tmp('out');
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const cases: [string[], string][] = [
      [['train', '--out', join(dir, 'nope', 'c.safetensors')], '--out'],
      [['train', '--method', 'gsure', '--corruption', 'mask:p=0.2', '--out', join(file, 'c.safetensors')], '--out'],
      [['corrupt', '--corruption', 'mask:p=0.2', '--out', join(dir, 'nope', 'm.safetensors')], '--out'],
      [['mixture', '--out', join(dir, 'nope', 'x')], '--out'],
      [['sample', '--checkpoint', file, '--out', join(dir, 'nope', 's.png')], '--out'],
      [['demo', '--out', join(dir, 'nope', 'demo')], '--out'],
      [['diffem', '--corruption', 'mask:p=0.5', '--dir', join(dir, 'nope', 'run')], '--dir'],
      [['train', '--method', 'bootstrap', '--views', 'lowres:4', '--full', '2', '--out', join(file, 'boot')], '--out'],
    ];
    for (const [args, flag] of cases) {
      const r = cli(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`kintsugi: ${flag} `);
      expect(r.stderr).toMatch(/does not exist|not a directory|is a file/);
      expect(r.stdout).not.toMatch(/corrupting|step \d/); // nothing ran
    }
    expect(existsSync(join(dir, 'nope'))).toBe(false);
    const r = cli(['train', '--out', dir]);
    expect(r.stderr).toContain(`--out ${dir}: is a directory, expected a file name`);
  }, 600_000); // nine CLI processes: minutes on a loaded 2-core machine

  it('write errors are told apart: read-only is not "no such file"', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(describeWriteError(err('EACCES'))).toContain('permission denied');
    expect(describeWriteError(err('EROFS'))).toBe('read-only file system');
    expect(describeWriteError(err('ENOENT'))).toBe('the directory does not exist');
    expect(describeWriteError(err('ENOTDIR'))).toContain('is a file, not a directory');
  });
});

describe('SIGTERM is Ctrl-C', () => {
  it('saves a checkpoint and exits 130', async () => {
    const dir = tmp('sigterm');
    const ckpt = join(dir, 'c.safetensors');
    const child = spawn(
      process.execPath,
      [
        '--import',
        pathToFileURL(join(root, 'test/support/register-ts.mjs')).href,
        join(root, 'lib/cli.ts'),
        'train',
        '--steps',
        '100000',
        '--batch',
        '2',
        '--out',
        ckpt,
      ],
      {
        cwd: root,
        env: { ...process.env, KINTSUGI_DEVICE: 'cpu' },
      },
    );
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      // The model line comes after the handler is installed: from there on SIGTERM must save.
      if (!sent && stdout.includes('supervised: ')) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    expect(stdout).toContain('terminated: finishing the current step and saving a checkpoint');
    expect(stdout).toMatch(/stopped at step \d+/);
    expect(existsSync(ckpt)).toBe(true);
  }, 120_000);
});

describe('sample and eval', () => {
  it('sample writes a PNG and a .npy that eval reads; ddpm honours --steps; progress shows without a terminal', async () => {
    const dir = tmp('sample');
    const ckpt = join(dir, 'c.safetensors');
    expect(cli(['train', ...quickTrain, '--out', ckpt]).status).toBe(0);
    const png = join(dir, 's.png');
    const s = cli(['sample', '--checkpoint', ckpt, '--n', '8', '--method', 'ddpm', '--steps', '3', '--out', png]);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stdout).toContain('ddpm 3 steps');
    expect(s.stdout).toMatch(/sample step 3\/3/); // a progress line, though stdout is a pipe
    expect(existsSync(png)).toBe(true);
    const { readNpy } = await import('../lib/data/npy.ts');
    const npy = await readNpy(join(dir, 's.npy'));
    expect(npy.shape).toEqual([8, 1, 32, 32]);
    expect(npy.dtype).toBe('float32');
    const e = cli(['eval', '--samples', join(dir, 's.npy'), '--ref', 'fashion-mnist', '--limit', '40', '--json']);
    expect(e.status, e.stderr).toBe(0);
    const report = JSON.parse(e.stdout) as { samples: { n: number }; fdFmnist: number };
    expect(report.samples.n).toBe(8);
    expect(Number.isFinite(report.fdFmnist)).toBe(true);
    expect(cli(['sample', '--checkpoint', ckpt, '--steps', '5000', '--out', png]).stderr).toContain('--steps: expected at most 1000');

    // --resume with another preset names both presets.
    const r = cli(['train', '--resume', ckpt, '--preset', 'fmnist32', ...quickTrain, '--out', join(dir, 'd.safetensors')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('holds a small32 model, but --preset fmnist32 was asked for: pass --preset small32');
  }, 240_000);
});

describe('DiffEM --dir', () => {
  it('stores its settings, refuses a mismatch by name, resumes the next round and says when it is complete', () => {
    const dir = join(tmp('diffem-dir'), 'run');
    const quick = [
      '--corruption',
      'mask:p=0.3',
      '--limit',
      '16',
      '--steps',
      '2',
      '--batch',
      '4',
      '--sample-steps',
      '2',
      '--rank',
      '2',
      '--prior-iterations',
      '2',
      '--dir',
      dir,
    ];
    const first = cli(['diffem', ...quick, '--rounds', '1']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/round 1: E-step, reconstructions 16\/16/);
    expect(JSON.parse(readFileSync(join(dir, 'settings.json'), 'utf8')).settings.limit).toBe('16');
    const more = cli(['diffem', ...quick, '--rounds', '2']);
    expect(more.status, more.stderr).toBe(0);
    expect(more.stdout).toContain('resuming round 2 of 2');
    const again = cli(['diffem', ...quick, '--rounds', '2']);
    expect(again.stdout).toContain('is already complete (2 of 2 rounds)');
    const other = cli(['diffem', ...quick.map((a) => (a === '16' ? '32' : a === 'mask:p=0.3' ? 'mask:p=0.4' : a)), '--rounds', '2']);
    expect(other.status).toBe(2);
    expect(other.stderr).toContain('--corruption mask:p=0.3 there, mask:p=0.4 now; --limit 16 there, 32 now');
  }, 300_000);
});

describe('messages name the flags', () => {
  it('negative numbers, ranges, unknown options and -h', () => {
    expect(cli(['train', '--steps', '-5']).stderr).toContain('--steps: expected a positive integer, got "-5"');
    expect(cli(['train', '--seed', '-1']).stderr).toContain('--seed: expected an integer >= 0, got "-1"');
    expect(cli(['train', '--batch', '2.5']).stderr).toContain('--batch: expected a positive integer, got "2.5"');
    expect(cli(['train', '--every', '0']).stderr).toContain('--every: expected a positive integer, got "0"');
    expect(cli(['train', '--data', join(tmpdir(), 'no-such-dir-kintsugi')]).stderr).toMatch(/--data .*no such directory.* as --data$/m);
    const unknown = cli(['train', '--fly', '1']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('train: unknown option --fly (kintsugi train --help lists the options)');
    expect(cli(['train', '--probes', '2']).stderr).toContain('--probes belongs to --method gsure, not supervised');
    const h = cli(['train', '-h']);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/methods:\n {2}supervised[^\n]*\n {2}naive[^\n]*\n {2}gsure[^\n]*\n {2}ambient[^\n]*\n {2}bootstrap/);
    expect(cli(['train', '--method', 'gsure', '-h']).stdout).toContain('--probes K');
    const d = cli(['devices', '--help']);
    expect(d.stdout).toContain('usage: kintsugi devices');
    expect(d.stdout).not.toContain('kintsugi addon:');
    expect(cli(['eval', '-h']).stdout).toContain('usage: kintsugi eval');
  }, 600_000);

  it('option parsing and numbers, in-process', () => {
    expect(parseOptions(['--seed', '-3', '--lr', '-1e-3'], { seed: { type: 'string' }, lr: { type: 'string' } }, 'x')).toMatchObject({
      seed: '-3',
      lr: '-1e-3',
    });
    expect(() => parseOptions(['--seed'], { seed: { type: 'string' } }, 'x')).toThrow('x: --seed needs a value');
    expect(() => integer('-5', 1, '--steps')).toThrow('--steps: expected a positive integer, got "-5"');
    expect(() => number('', 1, '--lr')).toThrow('--lr: expected a number, got ""');
    expect(() => number('0', 1, '--lr', { above: 0 })).toThrow('--lr: expected a number > 0, got 0');
    expect(number('2e-4', 1, '--lr', { above: 0 })).toBe(2e-4);
  });

  it('durations never show 60 seconds', () => {
    expect(duration(299.6)).toBe('5m00s');
    expect(duration(119.5)).toBe('2m00s');
    expect(duration(89.4)).toBe('89s');
    expect(duration(89.6)).toBe('1m30s');
    expect(duration(61.2)).toBe('61s');
  });

  it('small32, a CLI preset, is a library preset too', () => {
    expect(presets.small32.resolution).toBe(32);
    const net = new UNet('small32', { device: 'cpu' });
    expect(net.config.channels).toBe(32);
    net.dispose();
  });
});
