// PNG: CRC-32 against its check value, hand-filtered scanlines for all five filters, files from two
// independent encoders (a small Python one and netpbm's libpng-based tools, see
// test/fixtures/data/make_fixtures.py), round trips, netpbm decoding what we encode (where installed),
// hostile files, and the tensor helpers.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync, inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32, decodePng, encodePng, gridToPng, imageToPng, pngChunk, readPng, writePng, type PngImage } from '../../lib/data/png.ts';

const fixtures = fileURLToPath(new URL('../fixtures/data/', import.meta.url));
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kintsugi-png-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A PNG from IHDR fields and the filtered scanlines (each starting with its filter byte). */
function pngOf(
  width: number,
  height: number,
  depth: number,
  colorType: number,
  scanlines: number[][],
  extra: Uint8Array[] = [],
  options: { interlace?: number; idat?: Uint8Array } = {},
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([depth, colorType, 0, 0, options.interlace ?? 0], 8);
  const idat = options.idat ?? deflateSync(Uint8Array.from(scanlines.flat()));
  return concat([
    Uint8Array.from(SIGNATURE),
    pngChunk('IHDR', ihdr),
    ...extra,
    pngChunk('IDAT', idat),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The fixtures' pixel formula (make_fixtures.py). */
const value = (x: number, y: number, c: number): number => (37 * x + 59 * y + 101 * c) % 256;
function expected(width: number, height: number, channels: number): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) out[(y * width + x) * channels + c] = value(x, y, c);
  return out;
}

function randomImage(width: number, height: number, channels: PngImage['channels'], seed: number): PngImage {
  let s = seed;
  const data = new Uint8Array(width * height * channels);
  // Smooth gradients plus noise, so every filter has rows it wins.
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (i % 3 === 0 ? (i * 5) & 255 : (s >>> 24) & (i % 7 === 0 ? 255 : 7)) + (i % 11);
  }
  return { width, height, channels, data };
}

const pngtopam = (() => {
  try {
    execFileSync('pngtopam', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('crc32', () => {
  it('matches the CRC-32 check value and continues across calls', () => {
    const text = new TextEncoder().encode('123456789');
    expect(crc32(text)).toBe(0xcbf43926);
    expect(crc32(text.subarray(4), crc32(text.subarray(0, 4)))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    // The IEND chunk every PNG ends with: its CRC is fixed.
    expect([...pngChunk('IEND', new Uint8Array(0))]).toEqual([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
  });
});

describe('decodePng on hand-filtered scanlines', () => {
  // The 3x2 grey image [[10, 20, 30], [15, 25, 45]], filtered by hand with each filter (a = left, b = up, c = up-left).
  const image = Uint8Array.of(10, 20, 30, 15, 25, 45);
  const cases: [string, number[][]][] = [
    [
      'None',
      [
        [0, 10, 20, 30],
        [0, 15, 25, 45],
      ],
    ],
    [
      'Sub (x - a)',
      [
        [1, 10, 10, 10],
        [1, 15, 10, 20],
      ],
    ],
    [
      'Up (x - b)',
      [
        [2, 10, 20, 30],
        [2, 5, 5, 15],
      ],
    ],
    [
      'Average (x - floor((a + b) / 2))',
      [
        [3, 10, 15, 20],
        [3, 10, 8, 18],
      ],
    ],
    [
      'Paeth',
      [
        [4, 10, 10, 10],
        [4, 5, 5, 15],
      ],
    ],
    [
      'mixed',
      [
        [4, 10, 10, 10],
        [3, 10, 8, 18],
      ],
    ],
  ];
  for (const [name, scanlines] of cases)
    it(`filter ${name}`, () => {
      expect(decodePng(pngOf(3, 2, 8, 0, scanlines))).toEqual({ width: 3, height: 2, channels: 1, data: image });
    });

  it('Paeth choosing the upper-left neighbour, and wrap-around modulo 256', () => {
    // [[50, 10], [100, 77]]: at (1, 1) a = 100, b = 10, c = 50, p = 60, so c is nearest: 77 - 50 = 27.
    // Row 0 at x = 1: b = c = 0, so a: 10 - 50 = -40 = 216 (mod 256).
    expect(
      decodePng(
        pngOf(2, 2, 8, 0, [
          [4, 50, 216],
          [4, 50, 27],
        ]),
      ).data,
    ).toEqual(Uint8Array.of(50, 10, 100, 77));
    // RGB, Sub: a is the same channel one pixel to the left (3 bytes back).
    expect(decodePng(pngOf(2, 1, 8, 2, [[1, 200, 1, 2, 66, 255, 0]])).data).toEqual(Uint8Array.of(200, 1, 2, 10, 0, 2));
  });

  it('sub-byte greyscale and palettes, and 16-bit samples scaled to 8 bits', () => {
    // 1-bit grey, 10 pixels: 1011001110 -> bytes 10110011 10000000.
    expect(decodePng(pngOf(10, 1, 1, 0, [[0, 0b10110011, 0b10000000]])).data).toEqual(
      Uint8Array.from([1, 0, 1, 1, 0, 0, 1, 1, 1, 0], (b) => b * 255),
    );
    // 4-bit grey: 0x0f, 0x8_ -> 0, 255, 136.
    expect(decodePng(pngOf(3, 1, 4, 0, [[0, 0x0f, 0x80]])).data).toEqual(Uint8Array.of(0, 255, 136));
    // 16-bit grey: round(v / 257).
    expect(decodePng(pngOf(3, 1, 16, 0, [[0, 0, 0, 0x80, 0x80, 0xff, 0xff]])).data).toEqual(Uint8Array.of(0, 128, 255));
    // 16-bit RGBA with Sub: the left neighbour is 8 bytes back.
    const rgba16 = decodePng(pngOf(2, 1, 16, 6, [[1, 1, 1, 2, 2, 3, 3, 255, 255, 1, 1, 0, 0, 0, 0, 0, 0]]));
    expect(rgba16).toEqual({ width: 2, height: 1, channels: 4, data: Uint8Array.of(1, 2, 3, 255, 2, 2, 3, 255) });
    // 2-bit palette: indices 3, 0, 1 -> entries; no tRNS -> RGB.
    const plte = pngChunk('PLTE', Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
    expect(decodePng(pngOf(3, 1, 2, 3, [[0, 0b11000100]], [plte])).data).toEqual(Uint8Array.of(10, 11, 12, 1, 2, 3, 4, 5, 6));
    // With tRNS for the first two entries -> RGBA, the others opaque.
    const trns = pngChunk('tRNS', Uint8Array.of(0, 128));
    expect(decodePng(pngOf(3, 1, 2, 3, [[0, 0b11000100]], [plte, trns]))).toEqual({
      width: 3,
      height: 1,
      channels: 4,
      data: Uint8Array.of(10, 11, 12, 255, 1, 2, 3, 0, 4, 5, 6, 128),
    });
  });
});

describe('decodePng on files from other encoders', () => {
  const py: [string, number, number][] = [
    ['py-rgb-filter0.png', 3, 8],
    ['py-rgb-filter1.png', 3, 8],
    ['py-rgb-filter2.png', 3, 8],
    ['py-rgb-filter3.png', 3, 8],
    ['py-rgb-filter4.png', 3, 8],
    ['py-gray-filters.png', 1, 8],
    ['py-rgba-filters.png', 4, 8],
    ['py-gray-alpha-filters.png', 2, 8],
    ['py-gray16-filters.png', 1, 16],
    ['netpbm-gray.png', 1, 8],
    ['netpbm-rgb.png', 3, 8],
    ['netpbm-rgb-palette.png', 3, 8],
    ['netpbm-gray16.png', 1, 16],
  ];
  for (const [name, channels] of py)
    it(name, async () => {
      expect(await readPng(join(fixtures, name))).toEqual({ width: 7, height: 5, channels, data: expected(7, 5, channels) });
    });

  it('palettes: py-palette2-trns.png (2-bit, tRNS) and netpbm-palette.png (2-bit)', async () => {
    const entry = (k: number): number[] => [60 * k, 255 - 60 * k, 7 * k];
    const alpha = [0, 80, 160, 255];
    const rgba: number[] = [];
    const rgb: number[] = [];
    for (let y = 0; y < 5; y++)
      for (let x = 0; x < 7; x++) {
        const k = (x + y) % 4;
        rgba.push(...entry(k), alpha[k]!);
        rgb.push(...entry(k));
      }
    expect(await readPng(join(fixtures, 'py-palette2-trns.png'))).toEqual({
      width: 7,
      height: 5,
      channels: 4,
      data: Uint8Array.from(rgba),
    });
    expect(await readPng(join(fixtures, 'netpbm-palette.png'))).toEqual({ width: 7, height: 5, channels: 3, data: Uint8Array.from(rgb) });
  });

  it('refuses interlaced files with a clear error', async () => {
    await expect(readPng(join(fixtures, 'netpbm-rgb-interlaced.png'))).rejects.toThrow(
      /netpbm-rgb-interlaced\.png: interlaced \(Adam7\) PNGs are not supported: save the image without interlacing/,
    );
  });
});

describe('encodePng', () => {
  it('round-trips 1, 2, 3 and 4 channels with either filter mode', () => {
    for (const channels of [1, 2, 3, 4] as const)
      for (const filter of ['adaptive', 'none'] as const) {
        const image = randomImage(37, 23, channels, channels * 7 + 1);
        const png = encodePng(image, { filter });
        expect([...png.subarray(0, 8)]).toEqual(SIGNATURE);
        expect(decodePng(png)).toEqual(image);
      }
    expect(decodePng(encodePng({ width: 1, height: 1, channels: 1, data: Uint8Array.of(7) })).data).toEqual(Uint8Array.of(7));
  });

  it('uses all five filters on varied rows (adaptive) and only filter 0 with "none"', () => {
    const image = randomImage(64, 64, 3, 3);
    for (let y = 0; y < 16; y++) image.data.fill(200, y * 192, (y + 1) * 192); // constant rows: Up or Sub win
    const filtersOf = (png: Uint8Array): Set<number> => {
      const idat = png.subarray(8 + 25 + 8, png.length - 12 - 4);
      const raw = inflateSync(idat);
      return new Set(Array.from({ length: 64 }, (_, y) => raw[y * 193]!));
    };
    expect(filtersOf(encodePng(image, { filter: 'none' }))).toEqual(new Set([0]));
    expect(filtersOf(encodePng(image)).size).toBeGreaterThan(1);
  });

  it.skipIf(!pngtopam)('netpbm (libpng) decodes what we encode', async () => {
    for (const channels of [1, 3] as const) {
      const image = randomImage(19, 11, channels, 5);
      const path = join(dir, `netpbm-${channels}.png`);
      await writePng(path, image);
      const pnm = execFileSync('pngtopam', [path]);
      const header = `${channels === 1 ? 'P5' : 'P6'}\n19 11\n255\n`;
      expect(pnm.subarray(0, header.length).toString('latin1')).toBe(header);
      expect(new Uint8Array(pnm.subarray(header.length))).toEqual(image.data);
    }
  });

  it('validates the image', () => {
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) })).toThrow(
      /image\.data: 2x2 with 3 channels needs 12 bytes, got 11/,
    );
    expect(() => encodePng({ width: 0, height: 2, channels: 1, data: new Uint8Array(0) })).toThrow(
      /image\.width: expected an integer in 1\.\.2\^31-1, got 0/,
    );
    expect(() => encodePng({ width: 1, height: 1, channels: 5 as 1, data: new Uint8Array(5) })).toThrow(
      /image\.channels: expected 1, 2, 3 or 4, got 5/,
    );
    expect(() => encodePng({ width: 1, height: 1, channels: 1, data: [1] as unknown as Uint8Array })).toThrow(
      /image\.data: expected a Uint8Array, got Array/,
    );
    expect(() => encodePng({ width: 1, height: 1, channels: 1, data: new Uint8Array(1) }, { level: 10 })).toThrow(/options\.level/);
  });
});

describe('decodePng refuses hostile and broken files', () => {
  const good = pngOf(3, 2, 8, 0, [
    [0, 10, 20, 30],
    [0, 15, 25, 45],
  ]);
  const idatAt = 8 + 25; // signature + IHDR chunk

  it('bad signature, bad CRC, truncation, a length past the end', () => {
    expect(() => decodePng(new TextEncoder().encode('GIF89a....'), 'x.gif')).toThrow(
      /^x\.gif: not a PNG file: expected the signature 89 50 4e 47 0d 0a 1a 0a, got 47 49 46/,
    );
    const badCrc = good.slice();
    badCrc[idatAt + 9] ^= 1; // one bit of the IDAT data
    expect(() => decodePng(badCrc)).toThrow(
      /chunk IDAT at byte 33: CRC mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\): the file is corrupt/,
    );
    const badHeaderCrc = good.slice();
    badHeaderCrc[8 + 8 + 12] ^= 1; // the interlace byte of IHDR
    expect(() => decodePng(badHeaderCrc)).toThrow(/chunk IHDR at byte 8: CRC mismatch/);
    expect(() => decodePng(good.subarray(0, good.length - 12))).toThrow(/with no IEND chunk \(truncated\)/);
    expect(() => decodePng(good.subarray(0, idatAt + 14))).toThrow(
      /chunk IDAT at byte 33: declares \d+ data bytes, only \d+ remain \(truncated\)/,
    );
    const huge = good.slice();
    new DataView(huge.buffer).setUint32(idatAt, 0x7ffffff0);
    expect(() => decodePng(huge)).toThrow(/chunk IDAT at byte 33: declares 2147483632 data bytes, only \d+ remain/);
    const tooLong = good.slice();
    new DataView(tooLong.buffer).setUint32(idatAt, 0x80000000);
    expect(() => decodePng(tooLong)).toThrow(/length 2147483648 exceeds 2\^31-1/);
    const badType = good.slice();
    badType[idatAt + 4] = 0x31;
    expect(() => decodePng(badType)).toThrow(/chunk at byte 33: type must be 4 ASCII letters, got 31 44 41 54/);
  });

  it('bad headers, and sizes bounded before any inflating or allocation', () => {
    expect(() => decodePng(pngOf(3, 1, 3, 0, [[0, 0]]))).toThrow(
      /IHDR: bit depth 3 is not allowed for colour type 0 \(greyscale\); allowed: 1, 2, 4, 8, 16/,
    );
    expect(() => decodePng(pngOf(3, 1, 16, 3, [[0, 0]]))).toThrow(/bit depth 16 is not allowed for colour type 3 \(palette\)/);
    expect(() => decodePng(pngOf(3, 1, 8, 5, [[0, 0]]))).toThrow(/colour type must be 0, 2, 3, 4 or 6, got 5/);
    expect(() => decodePng(pngOf(0, 1, 8, 0, [[0]]))).toThrow(/IHDR: width must be 1\.\.2\^31-1, got 0/);
    expect(() => decodePng(pngOf(3, 2, 8, 0, [], [], { interlace: 2 }))).toThrow(/interlace method must be 0 or 1, got 2/);
    // 2^31-1 squared RGBA pixels: refused from IHDR alone.
    expect(() => decodePng(pngOf(2 ** 31 - 1, 2 ** 31 - 1, 8, 6, [[0]]))).toThrow(
      /a 2147483647x2147483647 RGBA image needs \d+ bytes, more than options\.maxBytes \(1073741824\)/,
    );
    expect(() => decodePng(good, 'g.png', { maxBytes: 5 })).toThrow(/needs 8 bytes, more than options\.maxBytes \(5\)/);
    const noHeader = concat([Uint8Array.from(SIGNATURE), pngChunk('IDAT', deflateSync(Uint8Array.of(0, 1)))]);
    expect(() => decodePng(noHeader)).toThrow(/the first chunk must be IHDR, got IDAT/);
  });

  it('image data of the wrong size, bad filter types, corrupt zlib, palette errors, chunk order', () => {
    expect(() => decodePng(pngOf(3, 2, 8, 0, [[0, 10, 20, 30]]))).toThrow(
      /image data inflates to 4 bytes, a 3x2 8-bit greyscale image needs 8/,
    );
    expect(() => decodePng(pngOf(3, 2, 8, 0, [[0, 1, 2, 3], [0, 4, 5, 6], [0]]))).toThrow(
      /image data inflates to more than the 8 bytes a 3x2 8-bit greyscale image needs/,
    );
    expect(() =>
      decodePng(
        pngOf(3, 2, 8, 0, [
          [0, 10, 20, 30],
          [5, 15, 25, 45],
        ]),
      ),
    ).toThrow(/row 1: filter type must be 0\.\.4, got 5/);
    const idat = deflateSync(Uint8Array.of(0, 10, 20, 30, 0, 15, 25, 45));
    expect(() => decodePng(pngOf(3, 2, 8, 0, [], [], { idat: idat.subarray(0, idat.length - 5) }))).toThrow(
      /image data is truncated \(the zlib stream ends early\)/,
    );
    expect(() => decodePng(pngOf(3, 2, 8, 0, [], [], { idat: Uint8Array.of(1, 2, 3, 4, 5) }))).toThrow(/image data is corrupt \(zlib: /);
    const plte = pngChunk('PLTE', Uint8Array.of(1, 2, 3, 4, 5, 6));
    expect(() => decodePng(pngOf(2, 1, 8, 3, [[0, 0, 2]], [plte]))).toThrow(/pixel \(1, 0\): palette index 2 beyond the 2-entry PLTE/);
    expect(() => decodePng(pngOf(2, 1, 8, 3, [[0, 0, 1]]))).toThrow(/palette image without a PLTE chunk/);
    expect(() => decodePng(pngOf(2, 1, 8, 3, [[0, 0, 1]], [pngChunk('PLTE', Uint8Array.of(1, 2))]))).toThrow(
      /PLTE: length must be a multiple of 3/,
    );
    expect(() => decodePng(pngOf(2, 1, 8, 3, [[0, 0, 1]], [plte, pngChunk('tRNS', Uint8Array.of(1, 2, 3))]))).toThrow(
      /tRNS: 3 alpha values for a palette of 2 entries/,
    );
    expect(() => decodePng(pngOf(2, 1, 8, 0, [[0, 0, 1]], [pngChunk('ABCD', new Uint8Array(1))]))).toThrow(
      /unsupported critical chunk ABCD/,
    );
    // Ancillary chunks are skipped; IDAT split around another chunk is refused.
    expect(decodePng(pngOf(2, 1, 8, 0, [[0, 7, 9]], [pngChunk('tEXt', new TextEncoder().encode('a\0b'))])).data).toEqual(
      Uint8Array.of(7, 9),
    );
    const split = concat([
      good.subarray(0, idatAt),
      pngChunk('IDAT', idat.subarray(0, 4)),
      pngChunk('tEXt', Uint8Array.of(97, 0)),
      pngChunk('IDAT', idat.subarray(4)),
      pngChunk('IEND', new Uint8Array(0)),
    ]);
    expect(() => decodePng(split)).toThrow(/IDAT chunks must be consecutive/);
  });

  it('errors carry the code KINTSUGI_INVALID_PNG', () => {
    try {
      decodePng(Uint8Array.of(1, 2, 3));
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('KINTSUGI_INVALID_PNG');
    }
  });
});

describe('imageToPng and gridToPng', () => {
  it('maps the range to 0..255, clamping, NaN to 0, CHW to interleaved', () => {
    const grey = decodePng(imageToPng(Float32Array.of(-1, 0, 1, 2, NaN, -3), [1, 2, 3]));
    expect(grey).toEqual({ width: 3, height: 2, channels: 1, data: Uint8Array.of(0, 128, 255, 255, 0, 0) });
    // RGB, 1x2: channel planes [r0 r1] [g0 g1] [b0 b1].
    const rgb = decodePng(imageToPng(Float32Array.of(0, 1, 0.5, 0.25, 1, 0), [3, 1, 2], { range: [0, 1] }));
    expect(rgb.data).toEqual(Uint8Array.of(0, 128, 255, 255, 64, 0));
    expect(() => imageToPng(new Float32Array(5), [1, 2, 3])).toThrow(/values: shape \[1, 2, 3\] needs 6 values, got 5/);
    expect(() => imageToPng(new Float32Array(12), [2, 2, 3])).toThrow(/shape: C must be 1 \(grey\), 3 \(RGB\) or 4 \(RGBA\), got 2/);
    expect(() => imageToPng(new Float32Array(6), [1, 2, 3], { range: [1, 1] })).toThrow(
      /options\.range: expected \[low, high\] with finite low < high, got \[1,1\]/,
    );
    expect(() => imageToPng(new Float64Array(6) as unknown as Float32Array, [1, 2, 3])).toThrow(
      /values: expected a Float32Array, got Float64Array/,
    );
  });

  it('tiles images with padding and fills empty cells', () => {
    // Three 2x2 grey images with values 0, 0.5, 1 in [0, 1]; 2 columns, padding 1 -> 7x7.
    const values = new Float32Array(12);
    values.fill(0, 0, 4).fill(0.5, 4, 8).fill(1, 8, 12);
    const grid = decodePng(gridToPng(values, [3, 1, 2, 2], { columns: 2, padding: 1, range: [0, 1], padValue: 9 }));
    expect([grid.width, grid.height, grid.channels]).toEqual([7, 7, 1]);
    const rows = Array.from({ length: 7 }, (_, y) => [...grid.data.subarray(y * 7, y * 7 + 7)]);
    expect(rows).toEqual([
      [9, 9, 9, 9, 9, 9, 9],
      [9, 0, 0, 9, 128, 128, 9],
      [9, 0, 0, 9, 128, 128, 9],
      [9, 9, 9, 9, 9, 9, 9],
      [9, 255, 255, 9, 9, 9, 9],
      [9, 255, 255, 9, 9, 9, 9],
      [9, 9, 9, 9, 9, 9, 9],
    ]);
    // Defaults: ceil(sqrt(5)) = 3 columns, padding 2: 3 * (4 + 2) + 2 = 20 wide, 2 rows: 14 high; RGB.
    const rgb = decodePng(gridToPng(new Float32Array(5 * 3 * 16), [5, 3, 4, 4]));
    expect([rgb.width, rgb.height, rgb.channels]).toEqual([20, 14, 3]);
    expect(rgb.data[0]).toBe(255);
    expect(rgb.data[(2 * 20 + 2) * 3]).toBe(128);
    expect(() => gridToPng(new Float32Array(4), [1, 1, 2, 2], { columns: 0 })).toThrow(
      /options\.columns: expected a positive integer, got 0/,
    );
    expect(() => gridToPng(new Float32Array(4), [1, 1, 2], {})).toThrow(
      /shape: expected \[N, C, H, W\] of positive integers, got \[1,1,2\]/,
    );
  });
});

describe('writePng', () => {
  it('writes atomically and leaves no temporary files; refuses bytes that are not a PNG', async () => {
    const path = join(dir, 'out.png');
    const image = randomImage(5, 4, 4, 9);
    await writePng(path, image);
    expect(await readPng(path)).toEqual(image);
    await writePng(path, imageToPng(new Float32Array(4), [1, 2, 2]));
    expect((await readPng(path)).channels).toBe(1);
    await expect(writePng(path, Uint8Array.of(1, 2, 3))).rejects.toThrow(/png: expected PNG bytes/);
    expect((await readPng(path)).channels).toBe(1);
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
    await expect(writePng(join(dir, 'no-such-dir', 'x.png'), image)).rejects.toThrow(/cannot create a temporary file/);
    expect(await readFile(path)).toBeTruthy();
  });
});
