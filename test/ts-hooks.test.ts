// The transpile cache of test/support/ts-hooks.mjs (child processes of the tests import lib/*.ts
// through it): an edited file must never run from a stale cache entry, and an unwritable cache must
// cost only speed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { root } from './support/node.ts';

const run = (file: string, cache: string) =>
  execFileSync(process.execPath, ['--import', pathToFileURL(join(root, 'test/support/register-ts.mjs')).href, file], {
    cwd: root,
    env: { ...process.env, KINTSUGI_TS_CACHE: cache },
    encoding: 'utf8',
  }).trim();

describe("the tests' TypeScript hooks", () => {
  it('cache by content: an edit is seen at once, and an unchanged file is read back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-ts-hooks-'));
    const cache = join(dir, 'cache');
    const file = join(dir, 'm.ts');
    writeFileSync(file, 'const n: number = 1;\nconsole.log(`value ${n}`);\n');
    expect(run(file, cache)).toBe('value 1');
    expect(readdirSync(cache)).toHaveLength(1);
    expect(run(file, cache)).toBe('value 1');
    expect(readdirSync(cache)).toHaveLength(1); // read back, not written again
    writeFileSync(file, 'const n: number = 2;\nconsole.log(`value ${n}`);\n');
    expect(run(file, cache)).toBe('value 2');
    expect(readdirSync(cache).filter((f) => f.endsWith('.js'))).toHaveLength(2);
  });

  it('an unwritable cache folder still runs the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kintsugi-ts-hooks-'));
    const file = join(dir, 'm.ts');
    writeFileSync(file, 'const s: string = "ok";\nconsole.log(s);\n');
    const cache = join(dir, 'plain-file');
    writeFileSync(cache, 'x'); // a file where the folder should be: mkdir fails whatever the user
    expect(run(file, join(cache, 'sub'))).toBe('ok');
  });
});
