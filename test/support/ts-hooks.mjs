// Module hooks: TypeScript files are transpiled (types erased, nothing checked) with the project's
// own TypeScript compiler.
//
// The tests start about a hundred child processes (the CLI, snippets), and each one used to load the
// compiler (~9 MB of JavaScript) and transpile ~100 files: 2-5 s per process before any work, minutes of
// CI. The output is therefore cached on disk, keyed by a hash of the source, the compiler's version and
// these hooks, so an edited file is transpiled again and everything else is read back; the compiler is
// loaded only on a miss. Entries are written to a temporary name and renamed, so processes that start
// together never read half a file.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cacheDir = process.env.KINTSUGI_TS_CACHE ?? join(root, 'node_modules', '.cache', 'kintsugi-ts');
const tsVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'typescript', 'package.json'), 'utf8')).version;
// This file's own text stands for the compiler options below: any edit here starts a fresh cache.
const hooks = readFileSync(fileURLToPath(import.meta.url), 'utf8');
let ts;

async function transpile(source, url) {
  ts ??= (await import('typescript')).default;
  return ts.transpileModule(source, {
    fileName: url,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
  }).outputText;
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const source = await readFile(new URL(url), 'utf8');
  // The URL is part of the key: transpileModule's output does not depend on it today, but a cache must
  // not be the place where two files' outputs could ever be swapped.
  const key = createHash('sha256').update(`${tsVersion}\0${hooks}\0${url}\0${source}`).digest('hex');
  const file = join(cacheDir, `${key}.js`);
  let outputText;
  try {
    outputText = readFileSync(file, 'utf8');
  } catch {
    outputText = await transpile(source, url);
    try {
      mkdirSync(cacheDir, { recursive: true });
      const partial = `${file}.${process.pid}.tmp`;
      writeFileSync(partial, outputText);
      renameSync(partial, file);
    } catch {
      // An unwritable cache costs only speed.
    }
  }
  return { format: 'module', source: outputText, shortCircuit: true };
}
