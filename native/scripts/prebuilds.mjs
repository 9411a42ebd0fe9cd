// `npm run prebuilds`: builds the addon with cmake-js (CUDA backend when nvcc is present) through
// prebuildify, giving prebuilds/<platform>-<arch>/kintsugi.glibc.node, which node-gyp-build loads on
// install with no compiler. Set KINTSUGI_CUDA_ARCH (e.g. 90-real) to build fewer GPU architectures.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const prebuildify = join(dirname(require.resolve('prebuildify/package.json')), 'bin.js');
const r = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PREBUILD_NODE_GYP: join(root, 'native', 'scripts', 'cmake-shim.mjs') },
});
process.exit(r.status ?? 1);
