// The fuzz harness's hang detector, a worker thread (plain JavaScript: it must start without the
// TypeScript hooks). The fuzzing thread bumps a shared counter before every input and copies the input
// into shared memory; a parser stuck in a synchronous loop stops the counter, and this thread, which
// keeps running, saves the input to a file and kills the process so the run fails loudly. The limit
// is generous (a minute per input by default, inputs are a few KB), so heavy load cannot trip it.
import { writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workerData } from 'node:worker_threads';

const { control, input, limitSeconds } = workerData;
const state = new Int32Array(control); // [0] inputs started, [1] active (1) or idle (0), [2] bytes of the current input, [3] target index
const bytes = new Uint8Array(input);
let last = -1;
let since = Date.now();
setInterval(() => {
  const count = Atomics.load(state, 0);
  if (count !== last || Atomics.load(state, 1) === 0) {
    last = count;
    since = Date.now();
    return;
  }
  if (Date.now() - since < limitSeconds * 1000) return;
  const file = join(tmpdir(), `kintsugi-fuzz-hang-${process.pid}-${count}.bin`);
  writeFileSync(file, bytes.subarray(0, Atomics.load(state, 2)));
  writeSync(
    2,
    `\nfuzz watchdog: input ${count} (target #${Atomics.load(state, 3)}) has run for over ${limitSeconds} s: saved to ${file}; killing the process\n`,
  );
  process.kill(process.pid, 'SIGKILL');
}, 500);
