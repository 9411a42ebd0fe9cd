// The project's docs state facts the code must keep true: the checkpoint-key contract of docs/unet.md
// (every fmnist32 module, in order, with its shapes) and the parameter counts it gives.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { native } from '../../lib/native.ts';

const unetDoc = readFileSync(new URL('../../docs/unet.md', import.meta.url), 'utf8');

describe('docs/unet.md', () => {
  it('lists every fmnist32 tensor in layout order with its shape', () => {
    const rows = [...unetDoc.matchAll(/^(\S+)\s+weight (\[[\d,]+\])\s+bias (\[[\d,]+\])$/gm)];
    const documented = rows.flatMap(([, path, w, b]) => [`${path}.weight ${w}`, `${path}.bias ${b}`]);
    const actual = native.unetLayout('fmnist32').params.map((p) => `${p.name} ${JSON.stringify(p.shape)}`);
    expect(documented.length).toBe(244);
    expect(documented).toEqual(actual);
  });

  it("states the presets' parameter and tensor counts", () => {
    for (const [preset, params, tensors] of [
      ['tiny16', '701,345', 128],
      ['fmnist32', '6,469,889', 244],
      ['cifar32', '35,746,307', 304],
    ] as const) {
      const l = native.unetLayout(preset);
      expect(unetDoc).toContain(`\`${preset}\` ${params} in ${tensors} tensors`);
      expect(l.paramCount.toLocaleString('en-US')).toBe(params);
      expect(l.params.length).toBe(tensors);
    }
  });
});
