// Runs a TypeScript snippet in a fresh Node process, as test/support/node.ts's runNode does, but through
// the transpile cache of register-cached-ts.mjs (a start in ~1 s instead of ~14 s on a loaded machine)
// and with the environment a test needs (an allocator cap is read once per process, so it needs its own).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../support/node.ts';

export function runSnippet(code: string, env: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'kintsugi-rel-'));
  const file = join(dir, 'snippet.ts');
  writeFileSync(
    file,
    code.replaceAll("'./lib/", `'${pathToFileURL(root).href}lib/`).replaceAll("'./test/", `'${pathToFileURL(root).href}test/`),
  );
  try {
    return execFileSync(process.execPath, ['--import', pathToFileURL(join(root, 'test/reliability/register-cached-ts.mjs')).href, file], {
      cwd: root,
      env: { ...process.env, KINTSUGI_DEVICE: 'cpu', ...env },
      encoding: 'utf8',
      timeout: 600_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
