// The fuzz harness shared by the short run in `npm test` (test/fuzz/parsers.test.ts) and the long run
// (scripts/fuzz.ts). Each target is a parser or loader with an input generator; every generated input
// must end in a returned, self-consistent result or in a typed error that names the file, and must
// stay within three bounds that hold however loaded the machine is:
//  - work: a watchdog thread (watchdog.mjs) kills the process when one input runs past a generous
//    limit, saving that input, so a hang fails the run instead of stalling it;
//  - memory asked of JavaScript: every typed array, ArrayBuffer and Buffer the parser allocates is
//    counted (the global constructors are wrapped while a target runs), and the total per input must
//    stay below `allocationRatio` bytes per input byte plus 1 MiB;
//  - memory overall (native code, zlib): the process's peak resident size may not jump by more than
//    64 MiB during any one input, far above what an input of a few KB may legitimately need. (Not a
//    bound on the whole run: Node's zlib keeps ~8 KB per failed synchronous inflate until the garbage
//    collector gets to it, so RSS creeps up over 10^5 corrupt gzip inputs, levelling off near 400 MB.)
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';

export interface FuzzTarget<T> {
  name: string;
  /** Mutations of valid files and structure-aware generation. */
  arbitrary: fc.Arbitrary<T>;
  /** The input's bytes (all files concatenated): for the allocation bound and the watchdog's dump. */
  bytesOf(input: T): Uint8Array;
  /** Parses the input; validates a returned result itself (throwing an Error with `invariant` in its message). */
  run(input: T): unknown;
  /** The file name an error about this input must contain. */
  source(input: T): string;
  /** Error codes a parser failure may carry (an Error without one of them is a bug); none: any Error naming the file. */
  codes?: readonly string[];
  /** Bytes the parser may allocate per input byte (compressed formats inflate up to ~1032x). */
  allocationRatio: number;
}

/** Messages of JavaScript's own failures: a parser that lets one of these through has a bug. */
const INTERNAL =
  /Cannot read propert|Cannot destructure|is not a function|is not iterable|Maximum call stack|Invalid array length|Invalid typed array length|Array buffer allocation failed|is not defined|Cannot convert|serialize a BigInt|outside the bounds|out of memory|Invalid string length|invariant/;

export class FuzzFailure extends Error {}

/** Throws a FuzzFailure unless `e` is an error a user can act on: an Error naming the file, with an accepted code, not JavaScript's own. */
export function checkError(e: unknown, source: string, codes?: readonly string[]): void {
  if (!(e instanceof Error)) throw new FuzzFailure(`threw a non-Error: ${String(e)}`);
  const why = e.message;
  if (INTERNAL.test(why)) throw new FuzzFailure(`an internal error escaped: ${e.constructor.name}: ${why}\n${e.stack}`);
  if (!why.includes(source))
    throw new FuzzFailure(`the error does not name the file ${JSON.stringify(source)}: ${e.constructor.name}: ${why}`);
  const code = (e as { code?: unknown }).code;
  if (codes && !codes.includes(code as string))
    throw new FuzzFailure(`error code ${JSON.stringify(code)}, expected one of ${codes.join(', ')}: ${why}`);
}

// ---------------------------------------------------------------------------------------------- allocation accounting

const TYPED = [
  'Uint8Array',
  'Int8Array',
  'Uint8ClampedArray',
  'Uint16Array',
  'Int16Array',
  'Uint32Array',
  'Int32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
] as const;
let allocated = 0;

function sizeOfArg(arg: unknown, elementBytes: number): number {
  if (typeof arg === 'number') return arg * elementBytes; // a length: a new buffer
  if (arg instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && arg instanceof SharedArrayBuffer)) return 0; // a view
  if (arg !== null && typeof arg === 'object' && typeof (arg as { length?: unknown }).length === 'number')
    return (arg as { length: number }).length * elementBytes; // a copy
  return 0;
}

/** Wraps the global allocators so that allocated bytes are counted; returns the function that restores them. */
function countAllocations(): () => void {
  const g = globalThis as unknown as Record<string, unknown>;
  const saved: [object, string, unknown][] = [];
  for (const name of [...TYPED, 'ArrayBuffer']) {
    const real = g[name] as { BYTES_PER_ELEMENT?: number } & (new (...a: unknown[]) => object);
    const element = real.BYTES_PER_ELEMENT ?? 1;
    saved.push([g, name, real]);
    g[name] = new Proxy(real, {
      construct(target, args, newTarget) {
        allocated += sizeOfArg(args[0], element);
        return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
      },
    });
  }
  const B = Buffer as unknown as Record<string, (...a: unknown[]) => Buffer>;
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow', 'concat'] as const) {
    const real = B[name]!;
    saved.push([Buffer, name, real]);
    B[name] = function (this: unknown, ...args: unknown[]) {
      const out = real.apply(this, args);
      allocated += out.length;
      return out;
    };
  }
  return () => {
    for (const [obj, name, value] of saved) (obj as Record<string, unknown>)[name] = value;
  };
}

// ---------------------------------------------------------------------------------------------- the run

export interface FuzzOptions {
  runs: number;
  seed?: number;
  /** Seconds one input may run before the watchdog kills the process (default 60). */
  hangSeconds?: number;
  /** Called every `every` inputs. */
  onProgress?: (done: number) => void;
  every?: number;
}

export interface FuzzReport {
  target: string;
  inputs: number;
  /** Inputs that parsed (the rest ended in a typed error). */
  accepted: number;
  /** The largest allocation per input, bytes, and its ratio to the input size. */
  maxAllocated: number;
  /** Peak resident size growth over the run, bytes (reported, not bounded: see above). */
  rssGrowth: number;
  /** The largest growth of the peak resident size during one input, bytes. */
  maxRssJump: number;
  /** Distinct first words of the error messages (after the file name), with counts: what the inputs exercised. */
  errors: Map<string, number>;
}

const MAX_RSS_JUMP = 64 * 2 ** 20;
const SLACK = 2 ** 20;

/** Runs `target` on `options.runs` generated inputs; throws (fast-check's report, with the seed and the shrunk input) on the first failure. */
export async function fuzz<T>(target: FuzzTarget<T>, options: FuzzOptions, index = 0): Promise<FuzzReport> {
  const control = new SharedArrayBuffer(16);
  const state = new Int32Array(control);
  const input = new SharedArrayBuffer(1 << 20);
  const inputBytes = new Uint8Array(input);
  const watchdog = new Worker(new URL('./watchdog.mjs', import.meta.url), {
    workerData: { control, input, limitSeconds: options.hangSeconds ?? 60 },
  });
  watchdog.unref();
  const report: FuzzReport = {
    target: target.name,
    inputs: 0,
    accepted: 0,
    maxAllocated: 0,
    rssGrowth: 0,
    maxRssJump: 0,
    errors: new Map(),
  };
  const rss0 = process.resourceUsage().maxRSS * 1024;
  const restore = countAllocations();
  try {
    await fc.assert(
      fc.asyncProperty(target.arbitrary, async (value) => {
        const bytes = target.bytesOf(value);
        const n = Math.min(bytes.length, inputBytes.length);
        inputBytes.set(bytes.subarray(0, n));
        Atomics.store(state, 2, n);
        Atomics.store(state, 3, index);
        Atomics.store(state, 1, 1);
        Atomics.add(state, 0, 1);
        const source = target.source(value);
        const rssBefore = process.resourceUsage().maxRSS * 1024;
        allocated = 0;
        try {
          await target.run(value);
          report.accepted++;
        } catch (e) {
          if (e instanceof FuzzFailure) throw e;
          checkError(e, source, target.codes);
          const what =
            (e as Error).message
              .slice((e as Error).message.indexOf(source) + source.length)
              .replace(/^[:\s(]+/, '')
              .split(/[\s:,(]/)[0] ?? '';
          report.errors.set(what, (report.errors.get(what) ?? 0) + 1);
        } finally {
          Atomics.store(state, 1, 0);
        }
        const bound = target.allocationRatio * bytes.length + SLACK;
        if (allocated > bound) throw new FuzzFailure(`allocated ${allocated} bytes for a ${bytes.length}-byte input (bound ${bound})`);
        report.maxAllocated = Math.max(report.maxAllocated, allocated);
        const rssAfter = process.resourceUsage().maxRSS * 1024;
        if (rssAfter - rssBefore > MAX_RSS_JUMP)
          throw new FuzzFailure(
            `peak resident memory grew by ${rssAfter - rssBefore} bytes during one ${bytes.length}-byte input (bound ${MAX_RSS_JUMP})`,
          );
        report.maxRssJump = Math.max(report.maxRssJump, rssAfter - rssBefore);
        report.rssGrowth = rssAfter - rss0;
        report.inputs++;
        if (options.onProgress && report.inputs % (options.every ?? 10_000) === 0) options.onProgress(report.inputs);
      }),
      { numRuns: options.runs, seed: options.seed, endOnFailure: false },
    );
  } catch (e) {
    // fast-check's report (seed, path, shrunk input) with the failure itself first.
    const cause = (e as Error).cause;
    throw new FuzzFailure(`${target.name}: ${cause instanceof Error ? cause.message : String(cause ?? '')}\n${(e as Error).message}`, {
      cause: e,
    });
  } finally {
    restore();
    await watchdog.terminate();
  }
  return report;
}
