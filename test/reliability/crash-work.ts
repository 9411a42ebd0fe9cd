// The kill -9 harness shared by test/reliability/crash.test.ts (a few kills per kind of state) and
// scripts/crash-kill.ts (hundreds): runs crash-child.ts, kills it with SIGKILL after a random delay,
// checks that the state on disk still loads (the last complete state, never a torn one), restarts it
// to resume, and at the end compares the result with an uninterrupted run's. Nothing here depends on
// timing for its verdict: the delays only choose where the kills land.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readCheckpoint } from '../../lib/checkpoint.ts';
import { loadMeasurements, MeasurementSet } from '../../lib/corruption/dataset.ts';
import { readNpy } from '../../lib/data/npy.ts';
import type { UNetConfig } from '../../lib/unet.ts';
import { root } from '../support/node.ts';

export const CRASH_CONFIG: UNetConfig = { inChannels: 1, channels: 8, mult: [1, 2], resBlocks: 1, attnResolutions: [], resolution: 8 };
export const DIFFEM_CONFIG: UNetConfig = {
  inChannels: 3,
  outChannels: 1,
  channels: 8,
  mult: [1],
  resBlocks: 1,
  attnResolutions: [],
  resolution: 8,
};
export const TRAIN_STEPS = 24;
export const DIFFEM_ROUNDS = 3;
export type CrashMode = 'train' | 'measurements' | 'diffem';

/** Two different, deterministic measurement sets; the child alternates between them. */
export function measurementSet(i: number): MeasurementSet {
  const n = 64;
  const y = Float32Array.from({ length: n * 16 * 16 }, (_, k) => Math.sin(k * (i + 1) * 0.01));
  const mask = Uint8Array.from({ length: n * 16 * 16 }, (_, k) => ((k * (i + 3)) % 5 > 1 ? 1 : 0));
  for (let k = 0; k < y.length; k++) if (!mask[k]) y[k] = 0;
  return new MeasurementSet({
    signalShape: [1, 16, 16],
    measurements: y,
    params: { kind: 'mask', mask, maskChannels: 1 },
    sigma0: 0.01 * (i + 1),
    seed: String(i),
  });
}

/** What a kill left: did the state load, what it was, and whether a temporary file shows the kill landed inside a write. */
export interface KillOutcome {
  midWrite: boolean;
  /** A description of the state found (step, set, round). */
  state: string;
}

/** Checks the state in `dir` after a kill; throws (naming the file) when it does not load or is not a state the work could have written. */
export async function checkState(mode: CrashMode, dir: string, last: { progress: number }): Promise<KillOutcome> {
  const temporary = readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.includes('.tmp-'));
  for (const f of temporary) rmSync(join(dir, f)); // what SIGKILL left behind; an atomic writer cannot remove them
  const midWrite = temporary.length > 0;
  if (mode === 'train') {
    const path = join(dir, 'ckpt.safetensors');
    if (!existsSync(path)) return { midWrite, state: 'no checkpoint yet' };
    const c = await readCheckpoint(path);
    if (c.step < last.progress) throw new Error(`${path}: step ${c.step} after a kill, but step ${last.progress} had been saved before`);
    last.progress = c.step;
    return { midWrite, state: `step ${c.step}` };
  }
  if (mode === 'measurements') {
    const path = join(dir, 'set.safetensors');
    if (!existsSync(path)) return { midWrite, state: 'no file yet' };
    const got = await loadMeasurements(path);
    const which = [0, 1].find((i) => {
      const want = measurementSet(i);
      return got.sigma0 === want.sigma0 && got.measurements.every((v, k) => v === want.measurements[k]);
    });
    if (which === undefined) throw new Error(`${path}: loads, but holds neither of the two sets written`);
    return { midWrite, state: `set ${which}` };
  }
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) return { midWrite, state: 'round 0' };
  const { readDiffemState } = await import('../../lib/diffem/em.ts');
  const s = await readDiffemState(dir, [8, 1, 8, 8]);
  if (s.round < last.progress) throw new Error(`${statePath}: round ${s.round} after a kill, but round ${last.progress} had been recorded`);
  last.progress = s.round;
  // The round's checkpoint must load too (the next round starts from its weights).
  if (s.round > 0) await readCheckpoint(join(dir, `round-${s.round}.safetensors`));
  return { midWrite, state: `round ${s.round}` };
}

/** Runs the child in `dir` once; kills it `killAfterMs` after it is ready (never, when undefined). Resolves to whether it finished. */
export function runChild(
  mode: CrashMode,
  dir: string,
  killAfterMs?: number,
): Promise<{ finished: boolean; killed: boolean; workMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        pathToFileURL(join(root, 'test/reliability/register-cached-ts.mjs')).href,
        join(root, 'test/reliability/crash-child.ts'),
        mode,
        dir,
      ],
      {
        cwd: root,
        env: { ...process.env, KINTSUGI_DEVICE: 'cpu' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    let readyAt = 0;
    child.stdout.on('data', (d: Buffer) => {
      const first = !out.includes('ready');
      out += d.toString();
      if (first && out.includes('ready')) readyAt = performance.now();
      if (first && out.includes('ready') && killAfterMs !== undefined)
        timer = setTimeout(() => {
          killed = child.kill('SIGKILL');
        }, killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const finished = out.includes('done');
      if (signal === 'SIGKILL' || finished || (mode === 'measurements' && code === 0))
        resolve({ finished, killed: signal === 'SIGKILL' && killed, workMs: performance.now() - readyAt });
      else reject(new Error(`crash-child ${mode} exited with ${code ?? signal}: ${err.slice(-2000)}`));
    });
  });
}

/** The final result of the work in `dir` (for comparing an interrupted run with an uninterrupted one). */
export async function finalResult(mode: CrashMode, dir: string): Promise<Float32Array> {
  if (mode === 'train') {
    const c = await readCheckpoint(join(dir, 'ckpt.safetensors'));
    if (c.step !== TRAIN_STEPS) throw new Error(`train: the final checkpoint is at step ${c.step}, expected ${TRAIN_STEPS}`);
    return Float32Array.from([...c.params, ...c.ema!, ...c.optimizer!.m, ...c.optimizer!.v]);
  }
  const a = await readNpy(join(dir, `round-${DIFFEM_ROUNDS}.npy`));
  return a.data as Float32Array;
}

export interface KillReport {
  mode: CrashMode;
  kills: number;
  /** Kills that left a temporary file behind: they landed inside a write. */
  midWrite: number;
  /** States seen after the kills, e.g. "step 3" (how far the work had got). */
  states: string[];
  /** Whether the resumed result equals the uninterrupted one bit for bit (train and diffem). */
  identical?: boolean;
}

/**
 * `kills` random SIGKILLs (delays uniform in [0, maxDelayMs) after start-up, from a seeded generator),
 * each followed by a state check; then, for train and diffem, the run is completed and its result
 * compared with `reference` (an uninterrupted run's).
 */
export async function killLoop(
  mode: CrashMode,
  kills: number,
  maxDelayMs: number,
  seed: number,
  reference?: Float32Array,
  onKill?: (report: KillReport) => void,
): Promise<KillReport> {
  const dir = mkdtempSync(join(tmpdir(), `kintsugi-crash-${mode}-`));
  const report: KillReport = { mode, kills: 0, midWrite: 0, states: [] };
  let s = seed >>> 0;
  const random = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const last = { progress: 0 };
  try {
    while (report.kills < kills) {
      const { finished, killed } = await runChild(mode, dir, random() * maxDelayMs);
      if (killed) report.kills++;
      const outcome = await checkState(mode, dir, last);
      if (killed && outcome.midWrite) report.midWrite++;
      report.states.push(outcome.state);
      if (killed) onKill?.(report);
      if (finished) {
        if (mode === 'measurements') continue;
        // The work completed before the kill: start it over, so the kills keep landing in the work.
        if (reference) {
          const got = await finalResult(mode, dir);
          if (!(got.length === reference.length && got.every((v, i) => Object.is(v, reference[i]))))
            throw new Error(`${mode}: a resumed run's result differs from the uninterrupted run's`);
          report.identical = report.identical ?? true;
        }
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
        last.progress = 0;
      }
    }
    if (mode !== 'measurements' && reference) {
      const { finished } = await runChild(mode, dir);
      if (!finished) throw new Error(`${mode}: the final resumed run did not finish`);
      const got = await finalResult(mode, dir);
      report.identical = (report.identical ?? true) && got.length === reference.length && got.every((v, i) => Object.is(v, reference[i]));
    }
    return report;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An uninterrupted run's result, and how long its work took after start-up (to spread the kills over). */
export async function referenceResult(mode: 'train' | 'diffem'): Promise<{ result: Float32Array; workMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), `kintsugi-crash-ref-${mode}-`));
  try {
    const { finished, workMs } = await runChild(mode, dir);
    if (!finished) throw new Error(`${mode}: the uninterrupted run did not finish`);
    return { result: await finalResult(mode, dir), workMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
