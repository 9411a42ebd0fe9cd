#!/usr/bin/env node
// Stands in for node-gyp when prebuildify runs (PREBUILD_NODE_GYP): prebuildify always calls
// `node-gyp rebuild ...` and then takes the .node file from build/Release. We build with cmake-js
// instead, so the prebuilt binary has the CUDA backend, and CMakeLists.txt copies it there.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');

if (process.argv[2] !== 'rebuild') {
  console.error(`cmake-shim: only "rebuild" is supported, got ${process.argv.slice(2).join(' ')}`);
  process.exit(1);
}
// A stale CPU-only build from binding.gyp must not be what prebuildify picks up.
rmSync(join(root, 'build', 'Release'), { recursive: true, force: true });
const args = [cmakeJs, 'compile', '--out', 'build/cmake'];
if (process.env.KINTSUGI_CUDA_ARCH) args.push(`--CDKINTSUGI_CUDA_ARCH=${process.env.KINTSUGI_CUDA_ARCH}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
