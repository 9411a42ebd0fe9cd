// Checks a bootstrap manifest (bootstrap.json, written by trainBootstrap) read from disk: any JSON value
// may be there (a hand edit, a foreign or damaged file), so every field is checked for type and range
// before a checkpoint is opened or a schedule built, and an error names the file and the field.
import { NoiseSchedule } from '../schedule.ts';
import type { BootstrapManifest } from './run.ts';

/** More steps than any schedule needs; the schedule's tables are allocated from this number. */
const MAX_SCHEDULE_STEPS = 100_000;
const PREDICTIONS = ['eps', 'x0', 'v'];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
};

export function checkManifest(value: unknown, path: string): BootstrapManifest {
  const bad = (field: string, expected: string, got: unknown) => new TypeError(`${path}: ${field}: expected ${expected}, got ${show(got)}`);
  if (!isObject(value)) throw bad('the manifest', 'a JSON object', value);
  if (value.format !== 'kintsugi-bootstrap-1')
    throw new TypeError(`${path}: not a bootstrap manifest (format ${show(value.format)}, expected "kintsugi-bootstrap-1")`);
  const positive = (v: unknown, field: string) => {
    if (!Number.isSafeInteger(v) || (v as number) < 1) throw bad(field, 'a positive integer', v);
  };
  const checkpoint = (section: Record<string, unknown>, field: string) => {
    const c = section.checkpoint;
    if (typeof c !== 'string' || c === '' || c.includes('\0')) throw bad(`${field}.checkpoint`, 'a file name relative to the manifest', c);
  };
  const prediction = (section: Record<string, unknown>, field: string) => {
    if (!PREDICTIONS.includes(section.prediction as string)) throw bad(`${field}.prediction`, '"eps", "x0" or "v"', section.prediction);
  };
  const s = value.schedule;
  if (!isObject(s)) throw bad('schedule', 'an object {kind, steps, ...}', s);
  if (s.steps !== undefined && !(Number.isSafeInteger(s.steps) && (s.steps as number) <= MAX_SCHEDULE_STEPS))
    throw bad('schedule.steps', `an integer up to ${MAX_SCHEDULE_STEPS}`, s.steps);
  for (const k of ['beta1', 'betaT', 'offset'])
    if (s[k] !== undefined && typeof s[k] !== 'number') throw bad(`schedule.${k}`, 'a number', s[k]);
  try {
    new NoiseSchedule(s as never);
  } catch (e) {
    throw new TypeError(`${path}: ${(e as Error).message}`, { cause: e });
  }
  positive(value.full, 'full');
  const r = value.residual;
  if (!isObject(r)) throw bad('residual', 'an object {checkpoint, conditioned, lambda, penalty}', r);
  checkpoint(r, 'residual');
  if (typeof r.conditioned !== 'boolean') throw bad('residual.conditioned', 'true or false', r.conditioned);
  if (typeof r.lambda !== 'number' || !(r.lambda >= 0) || !Number.isFinite(r.lambda))
    throw bad('residual.lambda', 'a finite number >= 0', r.lambda);
  if (r.penalty !== 'l2' && r.penalty !== 'batch-variance') throw bad('residual.penalty', '"l2" or "batch-variance"', r.penalty);
  if (value.lowres === undefined && value.patch === undefined)
    throw new TypeError(`${path}: the manifest has neither a "lowres" nor a "patch" view`);
  if (value.lowres !== undefined) {
    const l = value.lowres;
    if (!isObject(l)) throw bad('lowres', 'an object {factor, prediction, checkpoint}', l);
    positive(l.factor, 'lowres.factor');
    prediction(l, 'lowres');
    checkpoint(l, 'lowres');
  }
  if (value.patch !== undefined) {
    const p = value.patch;
    if (!isObject(p)) throw bad('patch', 'an object {size, stride, window, positions, prediction, checkpoint}', p);
    positive(p.size, 'patch.size');
    positive(p.stride, 'patch.stride');
    if ((p.stride as number) > (p.size as number)) throw bad('patch.stride', `at most patch.size (${p.size as number})`, p.stride);
    if (!['uniform', 'triangle', 'hann'].includes(p.window as string))
      throw bad('patch.window', '"uniform", "triangle" or "hann"', p.window);
    if (typeof p.positions !== 'boolean') throw bad('patch.positions', 'true or false', p.positions);
    prediction(p, 'patch');
    checkpoint(p, 'patch');
  }
  return value as unknown as BootstrapManifest;
}
