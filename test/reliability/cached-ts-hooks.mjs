// Module hooks for the processes the crash tests start and kill many times: like test/support/ts-hooks.mjs
// (TypeScript transpiled, types erased), but each file's JavaScript is cached on disk, keyed by its path,
// size and modification time, so a restart does not load the TypeScript compiler again (on a loaded
// 2-core machine that cut a child's start from ~14 s to ~1 s). The cache lives in the system's
// temporary directory and is written atomically (a killed child never leaves half an entry).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(tmpdir(), 'kintsugi-ts-cache');
mkdirSync(dir, { recursive: true });
let ts;

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const st = statSync(path);
  const key = createHash('sha1').update(`1|${path}|${st.size}|${st.mtimeMs}`).digest('hex');
  const cached = join(dir, `${key}.js`);
  try {
    return { format: 'module', source: readFileSync(cached, 'utf8'), shortCircuit: true };
  } catch {
    ts ??= (await import('typescript')).default;
    const { outputText } = ts.transpileModule(readFileSync(path, 'utf8'), {
      fileName: url,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
    });
    const tmp = `${cached}.${process.pid}.tmp`;
    writeFileSync(tmp, outputText);
    renameSync(tmp, cached);
    return { format: 'module', source: outputText, shortCircuit: true };
  }
}
