// What every command of the CLI shares: option parsing with -h/--help and flag-named errors, number
// options, checks that outputs can be written before any work starts, progress lines, and Ctrl-C /
// SIGTERM handling. lib/cli.ts holds the table of commands; each command declares its options here.
import { accessSync, constants, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { TrainProgress } from './train.ts';

export type OptionType = { type: 'string' } | { type: 'boolean' };
export type Options = Record<string, OptionType>;
export type Values = Record<string, string | boolean | undefined>;

/** A command of the CLI: its one-line summary, its --help text, and what it does with its arguments. */
export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<void> | void;
}

/**
 * Parses `argv` against `options` (plus -h/--help). A negative number after a string option is its
 * value (`--seed -1`), not an unknown option; parse errors name the flag and the way to help.
 */
export function parseOptions(argv: string[], options: Options, command: string): Values {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.startsWith('--') ? a.slice(2) : '';
    if (options[name]?.type === 'string' && i + 1 < argv.length && /^-[0-9.]/.test(argv[i + 1]!)) joined.push(`${a}=${argv[++i]}`);
    else joined.push(a);
  }
  try {
    return parseArgs({ args: joined, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false })
      .values as Values;
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(msg);
    if (unknown) throw new UsageError(`${command}: unknown option ${unknown[1]} (kintsugi ${command} --help lists the options)`);
    const missing = /Option '(-[^ ']+)[^']*' argument missing/.exec(msg);
    if (missing) throw new UsageError(`${command}: ${missing[1]} needs a value (kintsugi ${command} --help)`);
    const positional = /Unexpected argument '([^']+)'/.exec(msg);
    if (positional)
      throw new UsageError(`${command}: unexpected argument "${positional[1]}" (options start with --; kintsugi ${command} --help)`);
    throw new UsageError(`${command}: ${msg.split('\n')[0]}`);
  }
}

/** A mistake in the command line (exit status 2, as for an unknown command). */
export class UsageError extends Error {}

/** A command built from its options: -h/--help prints `help`, anything else goes to `run` parsed. */
export function defineCommand(
  name: string,
  spec: { summary: string; help: string; options: Options; run(values: Values): Promise<void> | void },
): Command {
  return {
    summary: spec.summary,
    help: spec.help,
    run: (argv) => {
      const values = parseOptions(argv, spec.options, name);
      if (values.help) return console.log(spec.help);
      return spec.run(values);
    },
  };
}

/** The string option `key` (undefined when absent). */
export const str = (values: Values, key: string): string | undefined => values[key] as string | undefined;

/** The option `value` as a number, `fallback` when absent; anything else is a clear error naming `what`. */
export function number(
  value: string | undefined,
  fallback: number,
  what: string,
  range: { min?: number; max?: number; above?: number } = {},
): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${what}: expected a number, got "${value}"`);
  if (range.min !== undefined && v < range.min) throw new UsageError(`${what}: expected a number >= ${range.min}, got ${value}`);
  if (range.above !== undefined && !(v > range.above)) throw new UsageError(`${what}: expected a number > ${range.above}, got ${value}`);
  if (range.max !== undefined && v > range.max) throw new UsageError(`${what}: expected a number <= ${range.max}, got ${value}`);
  return v;
}

/** An integer option, at least `min` (default 1: counts, steps, sizes). */
export function integer(value: string | undefined, fallback: number, what: string, min = 1): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  if (value.trim() === '' || !Number.isInteger(v) || v < min)
    throw new UsageError(
      `${what}: expected ${min === 1 ? 'a positive integer' : min === 0 ? 'an integer >= 0' : `an integer >= ${min}`}, got "${value}"`,
    );
  return v;
}

/** A comma-separated list of numbers (e.g. --shape 1,16,16). */
export function numberList(value: string, what: string): number[] {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.some((v) => !Number.isFinite(v))) throw new UsageError(`${what}: expected comma-separated numbers, got "${value}"`);
  return parts;
}

/** Why writing into `dir` failed, in words (a read-only place is not "no such file"). */
export function describeWriteError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied (the directory is read-only for this user)';
  if (code === 'EROFS') return 'read-only file system';
  if (code === 'ENOENT') return 'the directory does not exist';
  if (code === 'ENOTDIR') return 'a part of the path is a file, not a directory';
  if (code === 'ENOSPC') return 'no space left on the device';
  return (e as Error).message;
}

/** Creates and removes a probe file in `dir`: the only test that also holds for root and read-only mounts. */
function probeDirectory(dir: string, what: string): void {
  const probe = join(dir, `.kintsugi-write-test-${process.pid}`);
  try {
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (e) {
    throw new UsageError(`${what}: cannot write into ${dir}: ${describeWriteError(e)}`);
  }
}

/**
 * Checks, before any work, that the file `path` can be written: its directory exists and takes a new
 * file, and the path is not a directory. Nothing is created (a typo in a directory name is an error,
 * not a new directory tree).
 */
export function checkWritableFile(path: string, what: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) throw new UsageError(`${what} ${path}: is a directory, expected a file name`);
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) throw new UsageError(`${what} ${path}: the directory ${dir} does not exist (create it first)`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${what} ${path}: ${dir} is not a directory`);
  probeDirectory(dir, `${what} ${path}`);
  if (existsSync(path)) {
    try {
      accessSync(path, constants.W_OK);
    } catch (e) {
      throw new UsageError(`${what} ${path}: the file exists and cannot be replaced: ${describeWriteError(e)}`);
    }
  }
}

/** Makes the output directory `dir` (its parent must exist) and checks that it takes new files. */
export function prepareOutputDir(dir: string, what: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UsageError(`${what} ${dir}: is a file, expected a directory`);
  } else {
    const parent = dirname(resolve(dir));
    if (!existsSync(parent)) throw new UsageError(`${what} ${dir}: the directory ${parent} does not exist (create it first)`);
    try {
      mkdirSync(dir);
    } catch (e) {
      throw new UsageError(`${what} ${dir}: cannot create it: ${describeWriteError(e)}`);
    }
  }
  probeDirectory(dir, `${what} ${dir}`);
}

/** Seconds as "42s" or "4m05s" (rounded once, so 299.6 s is 5m00s, never 4m60s). */
export function duration(seconds: number): string {
  const s = Math.round(Math.max(0, seconds));
  return s >= 90 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Writes a progress line: rewritten in place on a terminal, else printed when `log` says so. */
function progressLine(line: string, last: boolean, log: boolean): void {
  if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K${last ? '\n' : ''}`);
  else if (log) console.log(line);
}

/** A training progress line: in place on a terminal, otherwise a line per tenth of the run and at least every 10 s. */
export function progressPrinter(label: string) {
  let lastTenth = -1;
  let lastLog = -Infinity;
  return (p: TrainProgress) => {
    const line = `${label} step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} img/s  elapsed ${duration(p.elapsedSeconds)}  ETA ${duration(p.etaSeconds)}`;
    const tenth = Math.floor((10 * p.step) / p.steps);
    const log = tenth !== lastTenth || p.step === p.steps || p.elapsedSeconds - lastLog >= 10;
    progressLine(line, p.step === p.steps, log);
    if (log) lastLog = p.elapsedSeconds;
    lastTenth = tenth;
  };
}

/**
 * Progress of a phase counted in units (sampling steps, noise levels, EM iterations): `label done/total`
 * with elapsed time and ETA; in place on a terminal, otherwise a line per tenth and at least every 10 s.
 */
export function stepPrinter(label: string) {
  const began = performance.now();
  let lastTenth = -1;
  let lastLog = began;
  return (done: number, total: number, extra = '') => {
    const now = performance.now();
    const elapsed = (now - began) / 1000;
    const eta = done > 0 ? (elapsed * (total - done)) / done : NaN;
    const line = `${label} ${done}/${total}${extra ? `  ${extra}` : ''}  elapsed ${duration(elapsed)}${Number.isFinite(eta) ? `  ETA ${duration(eta)}` : ''}`;
    const tenth = Math.floor((10 * done) / total);
    const log = tenth !== lastTenth || done === total || now - lastLog > 10_000;
    progressLine(line, done === total, log);
    if (log) lastLog = now;
    lastTenth = tenth;
  };
}

let interrupted = false;

/** True once Ctrl-C or SIGTERM asked this process to stop (main() then exits with 130). */
export const wasInterrupted = () => interrupted;

/**
 * Ctrl-C and SIGTERM (kill, containers, batch schedulers) abort the returned controller: the work in
 * progress finishes its step and saves; a second signal quits at once. The process then exits 130.
 */
export function interruptible(): AbortController {
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    interrupted = true;
    console.log(
      `\n${signal === 'SIGTERM' ? 'terminated' : 'interrupted'}: finishing the current step and saving a checkpoint (Ctrl-C again to quit at once)`,
    );
    controller.abort();
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    const quit = () => process.exit(130);
    process.once('SIGINT', quit);
    process.once('SIGTERM', quit);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller;
}
