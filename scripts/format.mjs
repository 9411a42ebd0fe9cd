// Formats the sources the project tracks: Prettier for TypeScript and JavaScript, clang-format for C++ and
// CUDA (both pinned devDependencies, so every machine formats alike). `--check` changes nothing and exits 1
// when a file is not formatted (CI runs it); without it the files are rewritten.
//
//   npm run format          # rewrite
//   npm run format:check    # CI
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const bin = (name) => join(root, 'node_modules', '.bin', name);

// Tracked files only (git ls-files): build outputs, results and generated cases never enter.
const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
const scripts = tracked.filter((f) => /\.(ts|mts|cts|js|mjs|cjs)$/.test(f));
const native = tracked.filter((f) => /^native\/.*\.(c|cc|cpp|cu|cuh|h|hpp|inc)$/.test(f));

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw new Error(`format: could not run ${cmd}: ${r.error.message} (run npm ci first)`);
  return r.status ?? 1;
}

let failed = 0;
failed |= run(bin('prettier'), [check ? '--check' : '--write', '--log-level', check ? 'warn' : 'silent', ...scripts]);
failed |= run(bin('clang-format'), check ? ['--dry-run', '--Werror', ...native] : ['-i', ...native]);
if (check && failed) console.error('format: some files are not formatted; run `npm run format` and commit the result');
else if (!check) console.log(`format: ${scripts.length} TypeScript/JavaScript and ${native.length} C++/CUDA files`);
process.exitCode = failed ? 1 : 0;
