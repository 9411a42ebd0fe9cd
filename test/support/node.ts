import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs an ES module snippet in a fresh Node process at the repository root; it may import ./lib/*.ts. */
export function runNode(code: string, env: Record<string, string | undefined> = {}): string {
  return execFileSync(process.execPath, ['--import', './test/support/register-ts.mjs', '--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}
