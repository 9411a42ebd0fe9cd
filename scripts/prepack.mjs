// `npm pack` / `npm publish` run this first (package.json "prepack"): the tarball must carry a prebuilt
// addon for this platform, so that installing it needs no compiler. When prebuilds/<platform>-<arch>/
// holds no .node file, or one older than a native source, it runs `npm run prebuilds` (cmake-js through
// prebuildify, with the CUDA backend where nvcc is present) and fails the pack if that fails.
//   node scripts/prepack.mjs --dry-run   says what it would do
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);

/** The newest modification time of the files under `d` (recursively). */
function newest(d) {
  let t = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const binaries = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
const built = binaries.length ? Math.min(...binaries.map((f) => statSync(join(dir, f)).mtimeMs)) : 0;
const sources = Math.max(
  ...['include', 'core', 'cpu', 'cuda', 'napi']
    .map((d) => join(root, 'native', d))
    .filter(existsSync)
    .map(newest),
  statSync(join(root, 'CMakeLists.txt')).mtimeMs,
);
const reason =
  binaries.length === 0
    ? `no prebuilt addon in ${dir}`
    : built < sources
      ? `the prebuilt addon in ${dir} is older than the native sources`
      : '';
if (!reason) {
  console.log(`prepack: ${binaries.join(', ')} in ${dir} is up to date`);
  process.exit(0);
}
console.log(`prepack: ${reason}: building it (npm run prebuilds), so the tarball installs without a compiler`);
if (process.argv.includes('--dry-run')) process.exit(0);
const r = spawnSync('npm', ['run', 'prebuilds'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('prepack: building the prebuilt addon failed; the tarball would need a compiler to install, so it is not packed');
  process.exit(1);
}
