import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs a TypeScript module snippet in a fresh Node process at the repository root and returns its
 * stdout. The snippet imports the library as './lib/index.ts'; top-level await and `using` work.
 */
export function runNode(code: string, env: Record<string, string | undefined> = {}, nodeFlags: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'kintsugi-test-'));
  const file = join(dir, 'snippet.ts');
  writeFileSync(file, code.replaceAll("'./lib/", `'${pathToFileURL(root).href}lib/`));
  try {
    return execFileSync(
      process.execPath,
      [...nodeFlags, '--import', pathToFileURL(join(root, 'test/support/register-ts.mjs')).href, file],
      {
        cwd: root,
        env: { ...process.env, ...env },
        encoding: 'utf8',
        timeout: 600_000, // hang limits, not speed targets (a loaded 2-core machine runs 10x slower)
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the kintsugi CLI (lib/cli.ts) on the CPU and returns its status, stdout and stderr. */
export function runCli(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(
    process.execPath,
    ['--import', pathToFileURL(join(root, 'test/support/register-ts.mjs')).href, join(root, 'lib/cli.ts'), ...args],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, KINTSUGI_DEVICE: 'cpu', ...env },
      timeout: 600_000,
    },
  );
}
