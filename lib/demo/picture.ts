// The demo's one picture: panels of 8x8 tiles side by side, left to right: the corrupted inputs
// (missing pixels in red), samples of the model learned from them, and that model's restorations of the
// same inputs (lib/restore). RGB, each tile 32x32, 2-pixel white gaps, 8-pixel gaps between panels.
import { encodePng } from '../data/png.ts';

export interface Panel {
  /** [n, 1, 32, 32] values in [-1, 1]. */
  images: Float32Array;
  /** Optional [n, 32, 32] flags: 0 marks a missing pixel, drawn in red. */
  observed?: Uint8Array;
}

const TILE = 32;
const GAP = 2;
const PANEL_GAP = 8;
const COLUMNS = 8;

export function demoPicture(panels: Panel[], n: number): Uint8Array {
  const rows = Math.ceil(n / COLUMNS);
  const panelW = COLUMNS * (TILE + GAP) + GAP;
  const panelH = rows * (TILE + GAP) + GAP;
  const width = panels.length * panelW + (panels.length - 1) * PANEL_GAP;
  const data = new Uint8Array(width * panelH * 3).fill(255);
  const byte = (v: number) => Math.round(255 * Math.min(1, Math.max(0, (v + 1) / 2)));
  panels.forEach((panel, p) => {
    const x0 = p * (panelW + PANEL_GAP);
    for (let i = 0; i < n; i++) {
      const [tx, ty] = [x0 + GAP + (i % COLUMNS) * (TILE + GAP), GAP + Math.floor(i / COLUMNS) * (TILE + GAP)];
      for (let y = 0; y < TILE; y++)
        for (let x = 0; x < TILE; x++) {
          const k = i * TILE * TILE + y * TILE + x;
          const at = ((ty + y) * width + tx + x) * 3;
          if (panel.observed && !panel.observed[k]) data.set([200, 40, 40], at);
          else data.fill(byte(panel.images[k]!), at, at + 3);
        }
    }
  });
  return encodePng({ width, height: panelH, channels: 3, data });
}
