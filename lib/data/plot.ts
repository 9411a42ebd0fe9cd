// Loss curves as standalone SVG, for training reports and READMEs: no dependencies, no fonts to embed,
// readable in any browser. Points that cannot be drawn (NaN, infinite, or <= 0 on a log axis) are left
// out and counted in a note on the chart, so a diverging run is visible rather than silently trimmed.

export interface LossPoint {
  step: number;
  loss: number;
}

export interface LossCurveOptions {
  /** Pixels (default 640 x 400). */
  width?: number;
  height?: number;
  title?: string;
  /** Logarithmic loss axis (default false). */
  logY?: boolean;
  /** Also draw an exponential moving average with this weight in [0, 1) (e.g. 0.9), debiased as TensorBoard does; 0 or omitted: none. */
  smooth?: number;
  /** Axis titles (default "step" and "loss"). */
  xLabel?: string;
  yLabel?: string;
}

const MARGIN = { left: 64, right: 16, top: 36, bottom: 44 };

/** Text for XML content and attribute values. */
function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A tick label: up to 4 significant digits, exponent notation for very large or small values. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('.0e', 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** About `target` round values (1, 2 or 5 times a power of ten apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

const fmt = (v: number): string => (Math.round(v * 10) / 10).toString();

/** An SVG document plotting loss against step. */
export function lossCurveSvg(points: readonly LossPoint[], options: LossCurveOptions = {}): string {
  if (!Array.isArray(points))
    throw new TypeError(`points: expected an array of {step, loss}, got ${points === null ? 'null' : typeof points}`);
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  for (const [k, v] of [
    ['width', width],
    ['height', height],
  ] as const)
    if (!Number.isFinite(v) || v < 160 || v > 20000)
      throw new TypeError(`options.${k}: expected a number of pixels in 160..20000, got ${JSON.stringify(v)}`);
  const logY = options.logY ?? false;
  const smooth = options.smooth ?? 0;
  if (!(smooth >= 0 && smooth < 1))
    throw new TypeError(`options.smooth: expected a weight in [0, 1), got ${JSON.stringify(options.smooth)}`);
  for (const k of ['title', 'xLabel', 'yLabel'] as const)
    if (options[k] !== undefined && typeof options[k] !== 'string')
      throw new TypeError(`options.${k}: expected a string, got ${typeof options[k]}`);

  let nonFinite = 0;
  let nonPositive = 0;
  const valid: LossPoint[] = [];
  for (const [i, p] of points.entries()) {
    if (typeof p !== 'object' || p === null || typeof p.step !== 'number' || typeof p.loss !== 'number')
      throw new TypeError(`points[${i}]: expected {step: number, loss: number}, got ${JSON.stringify(p)}`);
    if (!Number.isFinite(p.step) || !Number.isFinite(p.loss)) nonFinite++;
    else if (logY && p.loss <= 0) nonPositive++;
    else valid.push({ step: p.step, loss: p.loss });
  }
  valid.sort((a, b) => a.step - b.step);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  if (options.title) out.push(`<text x="${fmt(width / 2)}" y="20" text-anchor="middle" font-size="14">${escapeXml(options.title)}</text>`);
  const notes: string[] = [];
  if (nonFinite > 0) notes.push(`${nonFinite} point${nonFinite === 1 ? '' : 's'} with NaN or infinite values skipped`);
  if (nonPositive > 0) notes.push(`${nonPositive} point${nonPositive === 1 ? '' : 's'} with loss <= 0 skipped (log scale)`);
  const noteSvg = notes.map(
    (note, i) =>
      `<text x="${width - MARGIN.right - 4}" y="${MARGIN.top + 14 + 13 * i}" text-anchor="end" fill="#b00">${escapeXml(note)}</text>`,
  ); // drawn last, over the curve
  if (valid.length === 0) {
    out.push(`<text x="${fmt(width / 2)}" y="${fmt(height / 2)}" text-anchor="middle">no points to plot</text>`, ...noteSvg, '</svg>');
    return out.join('\n') + '\n';
  }

  const x0 = MARGIN.left;
  const x1 = width - MARGIN.right;
  const y0 = height - MARGIN.bottom;
  const y1 = MARGIN.top;
  const fy = (v: number): number => (logY ? Math.log10(v) : v);
  let [sLo, sHi] = [valid[0]!.step, valid[valid.length - 1]!.step];
  if (sLo === sHi) [sLo, sHi] = [sLo - 1, sHi + 1];
  let lLo = Infinity;
  let lHi = -Infinity;
  for (const p of valid) [lLo, lHi] = [Math.min(lLo, fy(p.loss)), Math.max(lHi, fy(p.loss))];
  if (lLo === lHi) [lLo, lHi] = logY ? [lLo - 0.5, lHi + 0.5] : [lLo - (Math.abs(lLo) || 1) * 0.1, lHi + (Math.abs(lHi) || 1) * 0.1];
  const marginY = (lHi - lLo) * 0.04;
  [lLo, lHi] = [lLo - marginY, lHi + marginY];
  const px = (s: number): number => x0 + ((s - sLo) / (sHi - sLo)) * (x1 - x0);
  const py = (v: number): number => y0 - ((v - lLo) / (lHi - lLo)) * (y0 - y1); // v already on the axis scale

  // Ticks and grid. On a log axis: the powers of ten in range (with 2x and 5x when few decades are shown),
  // or plain round values when not even two of those fit.
  const xTicks = niceTicks(sLo, sHi, Math.max(2, Math.floor((x1 - x0) / 90)));
  let yTicks: number[]; // as loss values
  const yTarget = Math.max(2, Math.floor((y0 - y1) / 50));
  if (logY) {
    yTicks = [];
    const decades = Math.floor(lHi) - Math.floor(lLo);
    for (let k = Math.floor(lLo); k <= Math.floor(lHi); k++)
      for (const m of decades < 3 ? [1, 2, 5] : [1]) {
        const v = Number((m * 10 ** k).toPrecision(12));
        if (Math.log10(v) >= lLo && Math.log10(v) <= lHi) yTicks.push(v);
      }
    if (yTicks.length < 2) yTicks = niceTicks(10 ** lLo, 10 ** lHi, yTarget).filter((v) => v > 0);
  } else yTicks = niceTicks(lLo, lHi, yTarget);
  out.push('<g stroke="#e4e4e4" stroke-width="1">');
  for (const t of xTicks) out.push(`<line x1="${fmt(px(t))}" y1="${y1}" x2="${fmt(px(t))}" y2="${y0}"/>`);
  for (const t of yTicks) out.push(`<line x1="${x0}" y1="${fmt(py(fy(t)))}" x2="${x1}" y2="${fmt(py(fy(t)))}"/>`);
  out.push('</g>');
  out.push(
    `<g stroke="#333" stroke-width="1"><line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}"/></g>`,
  );
  out.push('<g fill="#333">');
  for (const t of xTicks) out.push(`<text x="${fmt(px(t))}" y="${y0 + 15}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  for (const t of yTicks) out.push(`<text x="${x0 - 5}" y="${fmt(py(fy(t)) + 4)}" text-anchor="end">${escapeXml(formatTick(t))}</text>`);
  out.push('</g>');
  out.push(`<text x="${fmt((x0 + x1) / 2)}" y="${height - 8}" text-anchor="middle">${escapeXml(options.xLabel ?? 'step')}</text>`);
  out.push(
    `<text transform="translate(14 ${fmt((y0 + y1) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml((options.yLabel ?? 'loss') + (logY ? ' (log scale)' : ''))}</text>`,
  );

  const line = (values: number[], attrs: string): string =>
    `<polyline fill="none" ${attrs} points="${thin(
      valid.map((p) => px(p.step)),
      values.map((v) => py(fy(v))),
      x1 - x0,
    ).join(' ')}"/>`;
  const losses = valid.map((p) => p.loss);
  if (smooth > 0) {
    const smoothed: number[] = [];
    let acc = 0;
    for (const [i, v] of losses.entries()) {
      acc = smooth * acc + (1 - smooth) * v;
      smoothed.push(acc / (1 - smooth ** (i + 1))); // debiased: the first values are not pulled toward 0
    }
    out.push(line(losses, 'stroke="#1f77b4" stroke-opacity="0.3" stroke-width="1"'));
    out.push(line(smoothed, 'stroke="#1f77b4" stroke-width="1.5"'));
  } else out.push(line(losses, 'stroke="#1f77b4" stroke-width="1.5"'));
  out.push(...noteSvg, '</svg>');
  return out.join('\n') + '\n';
}

/** Polyline vertices, at most about four per pixel column (first, lowest, highest, last), so long runs stay small. */
function thin(xs: number[], ys: number[], columns: number): string[] {
  const out: string[] = [];
  const vertex = (i: number): void => {
    out.push(`${fmt(xs[i]!)},${fmt(ys[i]!)}`);
  };
  if (xs.length <= 4 * columns) {
    for (let i = 0; i < xs.length; i++) vertex(i);
    return out;
  }
  for (let i = 0; i < xs.length; ) {
    const col = Math.floor(xs[i]!);
    let j = i;
    let lo = i;
    let hi = i;
    while (j < xs.length && Math.floor(xs[j]!) === col) {
      if (ys[j]! < ys[lo]!) lo = j;
      if (ys[j]! > ys[hi]!) hi = j;
      j++;
    }
    for (const k of [...new Set([i, Math.min(lo, hi), Math.max(lo, hi), j - 1])]) vertex(k);
    i = j;
  }
  return out;
}
