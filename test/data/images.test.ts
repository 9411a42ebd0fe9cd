// A folder of PNGs: name order, channel conversion (BT.601 luma, grey replication, alpha dropped),
// scaling to [-1, 1], and the errors for mismatched sizes and empty folders.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readImageFolder } from '../../lib/data/images.ts';
import { encodePng } from '../../lib/data/png.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kintsugi-images-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const f = (byte: number): number => Math.fround((2 * byte - 255) / 255);

describe('readImageFolder', () => {
  it('reads *.png in name order, converting channels and scaling to [-1, 1]', async () => {
    const folder = join(dir, 'mixed');
    await mkdir(join(folder, 'sub.png'), { recursive: true }); // a directory named like a PNG: skipped
    // 2x1 images. b: RGB (255,0,0) and (10,200,30); a: grey 0 and 255; C: RGBA, alpha dropped.
    await writeFile(join(folder, 'b.png'), encodePng({ width: 2, height: 1, channels: 3, data: Uint8Array.of(255, 0, 0, 10, 200, 30) }));
    await writeFile(join(folder, 'a.png'), encodePng({ width: 2, height: 1, channels: 1, data: Uint8Array.of(0, 255) }));
    await writeFile(join(folder, 'C.PNG'), encodePng({ width: 2, height: 1, channels: 4, data: Uint8Array.of(1, 2, 3, 0, 4, 5, 6, 128) }));
    await writeFile(join(folder, 'notes.txt'), 'not an image');

    const grey = await readImageFolder(folder, { channels: 1 });
    expect(grey.files).toEqual([join(folder, 'C.PNG'), join(folder, 'a.png'), join(folder, 'b.png')]); // code-point order: "C" < "a"
    expect(grey.shape).toEqual([3, 1, 1, 2]);
    // Luma: round(0.299 R + 0.587 G + 0.114 B): (255,0,0) -> 76, (10,200,30) -> 123.81 -> 124, (1,2,3) -> 1.815 -> 2, (4,5,6) -> 4.815 -> 5.
    expect(grey.data).toEqual(Float32Array.from([2, 5, 0, 255, 76, 124], f));

    const rgb = await readImageFolder(folder, { channels: 3, size: undefined });
    expect(rgb.shape).toEqual([3, 3, 1, 2]);
    // [N, C, H, W]: per image the R plane, then G, then B.
    expect(rgb.data).toEqual(Float32Array.from([1, 4, 2, 5, 3, 6, 0, 255, 0, 255, 0, 255, 255, 10, 0, 200, 0, 30], f));
    expect(rgb.data[6]).toBe(-1);
    expect(rgb.data[7]).toBe(1);
  });

  it('names the first file whose size differs', async () => {
    const folder = join(dir, 'sizes');
    await mkdir(folder);
    const square = encodePng({ width: 4, height: 4, channels: 1, data: new Uint8Array(16) });
    await writeFile(join(folder, '001.png'), square);
    await writeFile(join(folder, '002.png'), square);
    await writeFile(join(folder, '003.png'), encodePng({ width: 4, height: 3, channels: 1, data: new Uint8Array(12) }));
    await writeFile(join(folder, '004.png'), encodePng({ width: 5, height: 5, channels: 1, data: new Uint8Array(25) }));
    await expect(readImageFolder(folder, { channels: 1 })).rejects.toThrow(
      `${join(folder, '003.png')}: image is 4x3, expected 4x4 (001.png (the first file) is 4x4); every image in ${folder} must have the same size`,
    );
    await expect(readImageFolder(folder, { channels: 3, size: 5 })).rejects.toThrow(
      `${join(folder, '001.png')}: image is 4x4, expected 5x5 (options.size is 5)`,
    );
  });

  it('reports empty folders, missing folders, bad options and broken files', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await expect(readImageFolder(empty, { channels: 1 })).rejects.toThrow(`${empty}: no .png files in the folder`);
    await expect(readImageFolder(join(dir, 'missing'), { channels: 1 })).rejects.toThrow(/missing: cannot list the image folder: ENOENT/);
    await expect(readImageFolder(empty, { channels: 2 as 1 })).rejects.toThrow(/options\.channels: expected 1 or 3, got 2/);
    await expect(readImageFolder(empty, { channels: 1, size: 0 })).rejects.toThrow(/options\.size: expected a positive integer, got 0/);
    const broken = join(dir, 'broken');
    await mkdir(broken);
    await writeFile(join(broken, 'x.png'), 'GIF89a');
    await expect(readImageFolder(broken, { channels: 1 })).rejects.toThrow(`${join(broken, 'x.png')}: not a PNG file`);
  });
});
