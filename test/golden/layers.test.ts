// The native layers (docs/adding-an-op.md): napi converts between JavaScript and C++, core checks and
// dispatches, the backends compute. core and napi see the backends only through the declarations in
// native/include/kintsugi, never through a backend's private header; the backends do not include each
// other or core. A read of every #include line, so a shortcut taken in a hurry shows here.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../native/', import.meta.url);
const includes = (dir: string) =>
  readdirSync(new URL(dir, root))
    .filter((f) => /\.(cpp|cu|cuh|h)$/.test(f))
    .flatMap((f) =>
      readFileSync(new URL(`${dir}/${f}`, root), 'utf8')
        .split('\n')
        .filter((l) => /^\s*#\s*include\s+"/.test(l))
        .map((l) => `${dir}/${f}: ${l.trim()}`),
    );

describe('native layers', () => {
  it('core and napi include no backend-private header', () => {
    const bad = [...includes('core'), ...includes('napi')].filter((l) => /"(\.\.\/)+(cpu|cuda)\//.test(l));
    expect(bad).toEqual([]);
  });
  it('the backends include neither each other nor core', () => {
    const bad = [...includes('cpu'), ...includes('cuda')].filter((l) => /"(\.\.\/)+(cpu|cuda|core|napi)\//.test(l));
    expect(bad).toEqual([]);
  });
});
