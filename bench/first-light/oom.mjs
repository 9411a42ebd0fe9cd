// First light, out of memory: what a user sees when a GPU fills up, on the real device limit. The host
// test (native/dev/alloc) checks the caching allocator's logic against a stand-in runtime; this checks
// the real cudaMalloc, the error's JavaScript form and that the process stays usable:
//   1. tensors of 1/64 of the device's memory until the allocator refuses: KINTSUGI_OUT_OF_MEMORY with
//      a message, nothing counted for the refused one, a freed slot is usable again, all memory returns;
//   2. a UNet forward whose activations cannot fit (the batch sized from a measured small pass): the
//      queued work fails with the same code, and the same network then gives bit-identical results on a
//      small batch to those it gave before the failure.
// On the CPU (the dry run) the same checks run under KINTSUGI_CPU_MEMORY_LIMIT. One JSON object on stdout;
// exit 1 on a failed check.
//   node bench/first-light/oom.mjs --device cuda:0
import { parseArgs } from 'node:util';
import { UNet, devices, empty, emptyCache, memoryStats, randn, resetPeakMemory, full, Generator } from '../../dist/index.js';

const { values } = parseArgs({ options: { device: { type: 'string', default: 'cuda:0' } } });
const device = values.device;
const checks = [];
const check = (ok, name, detail) => checks.push({ name, ok: Boolean(ok), ...(detail === undefined ? {} : { detail }) });
const info = devices().find((d) => d.device === device);
if (!info)
  throw new Error(
    `oom: no device ${device} (devices: ${devices()
      .map((d) => d.device)
      .join(', ')})`,
  );
const envLimit = device === 'cpu' ? process.env.KINTSUGI_CPU_MEMORY_LIMIT : undefined;
const capacity = envLimit ? parseBytes(envLimit) : info.totalMemory;

function parseBytes(text) {
  const m = /^([\d.]+)([kmg]?)$/i.exec(text.trim());
  if (!m) throw new Error(`oom: KINTSUGI_CPU_MEMORY_LIMIT=${text} is not a size`);
  return Number(m[1]) * 1024 ** ' kmg'.indexOf(m[2].toLowerCase() || ' ');
}
const oomError = (e) => e instanceof Error && e.code === 'KINTSUGI_OUT_OF_MEMORY' && /out of (GPU|host) memory/.test(e.message);

// 1. Tensors until the device refuses.
const base = memoryStats(device).inUse;
const slab = Math.max(1 << 20, Math.floor(capacity / 64 / 4)); // floats per tensor: 1/64 of the memory
const held = [];
let refusal;
for (let i = 0; i < 256 && !refusal; i++) {
  try {
    held.push(empty([slab], { device }));
  } catch (e) {
    refusal = e;
  }
}
check(
  oomError(refusal),
  'filling the device ends in KINTSUGI_OUT_OF_MEMORY',
  refusal?.message ?? `no refusal after ${held.length} tensors`,
);
const inUse = memoryStats(device).inUse;
check(inUse - base >= held.length * slab * 4 && inUse - base < (held.length + 1) * slab * 4, 'the refused tensor is not counted', {
  held: held.length,
  inUse,
});
held.pop()?.dispose();
let again;
try {
  again = empty([slab], { device });
} catch (e) {
  again = e;
}
check(!(again instanceof Error), 'a freed slot can be allocated again', again instanceof Error ? again.message : undefined);
if (!(again instanceof Error)) held.push(again);
for (const t of held) t.dispose();
await emptyCache(device);
const afterFill = memoryStats(device);
check(afterFill.inUse === base && afterFill.cached === 0, 'every byte returns after dispose and emptyCache', afterFill);

// 2. A forward pass that cannot fit, then the same network on a small batch.
const net = new UNet('tiny16', { device, seed: 1 });
const small = 4;
const x = randn([small, 1, 16, 16], { generator: new Generator(2), device });
const t = full([small], 500, { device });
resetPeakMemory(device);
const before0 = memoryStats(device).inUse;
const first = net.forward(x, t);
const reference = await first.out.toArray();
const perImage = (memoryStats(device).peak - before0) / small;
first.tape.release();
first.out.dispose();
// The input of the big batch must fit easily, so that the failure comes from the activations, inside
// the queued work. When the pass's activations do not go through the device allocator (the CPU keeps
// them in its own buffers), the check cannot be provoked and is reported as not applicable.
const inputBytes = 16 * 16 * 4;
if (perImage < 4 * inputBytes) {
  checks.push({
    name: 'a forward whose activations cannot fit',
    ok: null,
    detail: `not applicable: ${perImage} B per image go through the allocator`,
  });
} else {
  const big = Math.ceil((1.5 * capacity) / perImage);
  let bigError;
  let bx;
  let bt;
  try {
    bx = empty([big, 1, 16, 16], { device });
    bt = full([big], 500, { device });
    const r = net.predict(bx, bt);
    try {
      await r.toArray();
    } finally {
      r.dispose();
    }
  } catch (e) {
    bigError = e;
  } finally {
    bx?.dispose();
    bt?.dispose();
  }
  check(
    oomError(bigError),
    `a forward of batch ${big} (${((big * perImage) / 2 ** 30).toFixed(1)} GiB of activations) fails with KINTSUGI_OUT_OF_MEMORY`,
    bigError?.message ?? 'it did not fail',
  );
}
const second = net.forward(x, t);
const repeat = await second.out.toArray();
second.tape.release();
second.out.dispose();
check(
  repeat.every((v, i) => Object.is(v, reference[i])),
  'after the failure the network gives bit-identical results on the small batch',
);
x.dispose();
t.dispose();
net.dispose?.();
await emptyCache(device);
check(memoryStats(device).inUse === base, 'no bytes left over at the end', memoryStats(device));

const failed = checks.filter((c) => c.ok === false).length;
console.log(
  JSON.stringify(
    {
      device,
      capacity,
      perImage,
      checks,
      passed: checks.filter((c) => c.ok === true).length,
      failed,
      notApplicable: checks.filter((c) => c.ok === null).length,
    },
    null,
    2,
  ),
);
process.exitCode = failed ? 1 : 0;
