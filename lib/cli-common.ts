// Helpers every command of the CLI shares: number options, progress lines, Ctrl-C handling.
import type { TrainProgress } from './train.ts';

/** The option `value` as a number, `fallback` when absent; anything else is a clear error naming `what`. */
export function number(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  if (!Number.isFinite(v)) throw new Error(`${what}: expected a number, got "${value}"`);
  return v;
}

/** A comma-separated list of numbers (e.g. --shape 1,16,16). */
export function numberList(value: string, what: string): number[] {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.some((v) => !Number.isFinite(v))) throw new Error(`${what}: expected comma-separated numbers, got "${value}"`);
  return parts;
}

export const duration = (s: number) => (s >= 90 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

/** A progress line: rewritten in place on a terminal, one line per tenth of the run otherwise. */
export function progressPrinter(label: string) {
  let lastTenth = -1;
  return (p: TrainProgress) => {
    const line = `${label} step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} img/s  elapsed ${duration(p.elapsedSeconds)}  ETA ${duration(p.etaSeconds)}`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K${p.step === p.steps ? '\n' : ''}`);
    else if (Math.floor((10 * p.step) / p.steps) !== lastTenth || p.step === p.steps) {
      lastTenth = Math.floor((10 * p.step) / p.steps);
      console.log(line);
    }
  };
}

export function interruptible(): AbortController {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    console.log('\ninterrupted: finishing the current step and saving a checkpoint (Ctrl-C again to quit at once)');
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return controller;
}
