// Lists the C++ sources of the CPU-only build for binding.gyp (the source fallback of `npm install`),
// so the two builds can never disagree on which files make the addon. native/cpu/isa/ is not listed:
// its files need per-file instruction-set flags (binding.gyp's kintsugi_isa_* targets, CMakeLists.txt).
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const files = [];
for (const dir of ['native/core', 'native/cpu', 'native/napi']) {
  for (const f of readdirSync(join(root, dir)).sort()) if (f.endsWith('.cpp')) files.push(join(dir, f));
}
console.log(files.map((f) => relative(process.cwd(), join(root, f))).join(' '));
