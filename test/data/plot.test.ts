// Loss-curve SVG: well-formed XML (a tag-balance check here, and Python's XML parser where present),
// skipped points noted, log axis ticks, escaping, smoothing, and thinning of long runs.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { formatTick, lossCurveSvg, niceTicks, type LossPoint } from '../../lib/data/plot.ts';

/** Throws unless every tag closes in order, attributes are quoted, and & only starts an entity. */
function checkWellFormed(svg: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < svg.length) {
    if (svg[i] !== '<') {
      if (svg[i] === '>') throw new Error(`bare > at ${i}`);
      i++;
      continue;
    }
    tag.lastIndex = i;
    const m = tag.exec(svg);
    if (m === null) throw new Error(`malformed tag at ${i}: ${svg.slice(i, i + 60)}`);
    const [, close, name, , selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> at ${i} closes <${open}>`);
    } else if (!selfClose) stack.push(name!);
    i = tag.lastIndex;
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(', ')}`);
  for (const m of svg.matchAll(/&(?!(amp|lt|gt|quot|apos);)/g)) throw new Error(`bare & at ${m.index}`);
  if (!svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')) throw new Error('not an SVG root');
}

const python = (() => {
  try {
    execFileSync('python3', ['-c', 'import xml.etree.ElementTree'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
/** Parses with Python's XML parser; returns the number of <polyline> elements and their vertex counts. */
function parseWithPython(svg: string): number[] {
  const code =
    'import sys, xml.etree.ElementTree as ET\n' +
    'root = ET.fromstring(sys.stdin.read())\n' +
    "print(' '.join(str(len(p.get('points').split())) for p in root.iter('{http://www.w3.org/2000/svg}polyline')))";
  const out = execFileSync('python3', ['-c', code], { input: svg, encoding: 'utf8' }).trim();
  return out === '' ? [] : out.split(' ').map(Number);
}

const curve = (n: number): LossPoint[] =>
  Array.from({ length: n }, (_, i) => ({ step: i * 10, loss: 1 / (1 + i / 20) + 0.05 * Math.sin(i * 1.7) }));
const polylines = (svg: string): string[][] => [...svg.matchAll(/<polyline[^>]* points="([^"]*)"/g)].map((m) => m[1]!.split(' '));

describe('lossCurveSvg', () => {
  it('draws a well-formed chart with axes, ticks and one vertex per point', () => {
    const svg = lossCurveSvg(curve(200), { title: 'fmnist32 <GSURE> & friends', width: 500, height: 300 });
    checkWellFormed(svg);
    expect(svg).toContain('width="500" height="300"');
    expect(svg).toContain('fmnist32 &lt;GSURE&gt; &amp; friends');
    expect(polylines(svg)).toHaveLength(1);
    expect(polylines(svg)[0]).toHaveLength(200);
    expect(svg).toMatch(/>step<\/text>/);
    expect(svg).toMatch(/>loss<\/text>/);
    expect(svg.match(/<text [^>]*text-anchor="middle">\d+<\/text>/g)!.length).toBeGreaterThanOrEqual(3); // x tick labels
    if (python) expect(parseWithPython(svg)).toEqual([200]);
  });

  it('skips NaN and infinite points with a note', () => {
    const points = curve(50);
    points[3] = { step: 30, loss: NaN };
    points[7] = { step: 70, loss: Infinity };
    points[9] = { step: NaN, loss: 1 };
    const svg = lossCurveSvg(points);
    checkWellFormed(svg);
    expect(svg).toContain('3 points with NaN or infinite values skipped');
    expect(polylines(svg)[0]).toHaveLength(47);
    expect(svg).not.toMatch(/NaN,|,NaN|Infinity,/);
    if (python) expect(parseWithPython(svg)).toEqual([47]);
  });

  it('log axis: ticks at powers of ten, points <= 0 skipped with a note', () => {
    const points = Array.from({ length: 100 }, (_, i) => ({ step: i, loss: 10 ** (1 - i / 25) })); // 10 .. 1e-3
    points.push({ step: 100, loss: 0 }, { step: 101, loss: -1 });
    const svg = lossCurveSvg(points, { logY: true });
    checkWellFormed(svg);
    for (const t of ['10', '1', '0.1', '0.01']) expect(svg).toContain(`text-anchor="end">${t}</text>`);
    expect(svg).toContain('2 points with loss &lt;= 0 skipped (log scale)');
    expect(svg).toContain('loss (log scale)');
    // Under three decades: 1, 2 and 5 times powers of ten; fewer than two of those in range: round linear values.
    const short = lossCurveSvg(
      [
        { step: 0, loss: 0.15 },
        { step: 1, loss: 1.2 },
      ],
      { logY: true },
    );
    for (const t of ['0.2', '0.5', '1']) expect(short).toContain(`text-anchor="end">${t}</text>`);
    const narrow = lossCurveSvg(
      [
        { step: 0, loss: 0.3 },
        { step: 1, loss: 0.45 },
      ],
      { logY: true },
    );
    checkWellFormed(narrow);
    expect(narrow).toMatch(/text-anchor="end">0\.4<\/text>/);
  });

  it('adds a smoothed line, and thins long runs to a few vertices per pixel column', () => {
    const svg = lossCurveSvg(curve(300), { smooth: 0.9 });
    checkWellFormed(svg);
    const [raw, smooth] = polylines(svg);
    expect(raw).toHaveLength(300);
    expect(smooth).toHaveLength(300);
    // Debiased: the first smoothed value equals the first loss.
    expect(smooth![0]).toBe(raw![0]);
    const long = lossCurveSvg(curve(100_000), { width: 400, height: 200 });
    checkWellFormed(long);
    const vertices = polylines(long)[0]!.length;
    expect(vertices).toBeGreaterThan(320);
    expect(vertices).toBeLessThanOrEqual(4 * (400 - 80) + 4);
    expect(long.length).toBeLessThan(100_000);
  });

  it('handles no points, one point and constant losses', () => {
    const none = lossCurveSvg([{ step: 1, loss: NaN }]);
    checkWellFormed(none);
    expect(none).toContain('no points to plot');
    expect(none).toContain('1 point with NaN or infinite values skipped');
    for (const points of [
      [{ step: 5, loss: 0.3 }],
      [
        { step: 0, loss: 2 },
        { step: 10, loss: 2 },
      ],
      [
        { step: 0, loss: 0 },
        { step: 1, loss: 0 },
      ],
    ]) {
      const svg = lossCurveSvg(points);
      checkWellFormed(svg);
      expect(svg).not.toContain('NaN');
    }
  });

  it('validates its arguments', () => {
    expect(() => lossCurveSvg(null as unknown as LossPoint[])).toThrow(/points: expected an array of \{step, loss\}, got null/);
    expect(() => lossCurveSvg([{ step: 1 } as LossPoint])).toThrow(
      /points\[0\]: expected \{step: number, loss: number\}, got \{"step":1\}/,
    );
    expect(() => lossCurveSvg([], { width: 10 })).toThrow(/options\.width: expected a number of pixels in 160\.\.20000, got 10/);
    expect(() => lossCurveSvg([], { smooth: 1 })).toThrow(/options\.smooth: expected a weight in \[0, 1\), got 1/);
    expect(() => lossCurveSvg([], { title: 3 as unknown as string })).toThrow(/options\.title: expected a string, got number/);
  });
});

describe('ticks', () => {
  it('niceTicks picks 1, 2 or 5 times a power of ten', () => {
    expect(niceTicks(0, 1000, 5)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(niceTicks(0.013, 0.087, 4)).toEqual([0.02, 0.04, 0.06, 0.08]);
    expect(niceTicks(-3, 7, 5)).toEqual([-2, 0, 2, 4, 6]);
    expect(niceTicks(0.1, 0.3, 2)).toEqual([0.1, 0.2, 0.3]);
  });
  it('formatTick is short', () => {
    expect([0, 1, 0.1, 0.25, 1234.5678, 120000, 0.0001, -2e-5].map(formatTick)).toEqual([
      '0',
      '1',
      '0.1',
      '0.25',
      '1235',
      '1.2e5',
      '1e-4',
      '-2e-5',
    ]);
  });
});
