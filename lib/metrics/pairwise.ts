// Squared Euclidean distances between two point sets, a block of query rows at a time, through the
// library's GEMM: a 1x1 convolution (native conv2d_forward) whose weight is the point set and whose
// input is the queries transposed computes every dot product q . p, on the CPU in parallel or on a
// GPU. Then |q - p|^2 = |q|^2 + |p|^2 - 2 q . p. The products are float32 sums over d terms, so a
// distance carries an absolute error of about 1e-6 |q| |p| (clamped at 0): negligible against the
// neighbour distances precision/recall compares, and N^2 d work that plain JavaScript would do 50x slower.
import { resolveDevice } from '../device.ts';
import { native } from '../native.ts';
import { empty, tensor, zeros } from '../tensor.ts';

/** Queries per GEMM column block. */
const COLUMNS = 128;
/** Distances per visited block (rows x np floats, 64 MB), so memory stays bounded for large sets. */
const BLOCK_VALUES = 1 << 24;

function squaredNorms(x: Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[i * d + k]! ** 2;
    out[i] = s;
  }
  return out;
}

/**
 * Calls visit(first, rows, d2) for consecutive blocks of query rows, d2[r * np + j] = |q[first + r] - p[j]|^2.
 * q [nq, d] and p [np, d] are row-major; a block holds about `blockValues` distances (whole GEMM column blocks).
 */
export async function forEachDistanceBlock(
  q: Float64Array,
  nq: number,
  p: Float64Array,
  np: number,
  d: number,
  device: string | undefined,
  visit: (first: number, rows: number, d2: Float32Array) => void,
  blockValues = BLOCK_VALUES,
): Promise<void> {
  const dev = resolveDevice(device, 'options.device');
  const [qn, pn] = [squaredNorms(q, nq, d), squaredNorms(p, np, d)];
  using weight = tensor(Float32Array.from(p), [np, d, 1, 1], { device: dev });
  using bias = zeros([np], { device: dev });
  const blockRows = COLUMNS * Math.max(1, Math.floor(blockValues / np / COLUMNS));
  const d2 = new Float32Array(Math.min(blockRows, nq) * np);
  for (let first = 0; first < nq; first += blockRows) {
    const rows = Math.min(blockRows, nq - first);
    const blocks = Math.ceil(rows / COLUMNS);
    // Input [blocks, d, 1, COLUMNS]: block b, channel k, column c holds q[first + b * COLUMNS + c][k] (0 past the end).
    const xt = new Float32Array(blocks * d * COLUMNS);
    for (let r = 0; r < rows; r++) {
      const [b, c] = [Math.floor(r / COLUMNS), r % COLUMNS];
      for (let k = 0; k < d; k++) xt[(b * d + k) * COLUMNS + c] = q[(first + r) * d + k]!;
    }
    using x = tensor(xt, [blocks, d, 1, COLUMNS], { device: dev });
    using y = empty([blocks, np, 1, COLUMNS], { device: dev });
    native.nnOp(
      'conv2d_forward',
      { n: blocks, cin: d, h: 1, w: COLUMNS, cout: np, k: 1, stride: 1 },
      [x.handle(), weight.handle(), bias.handle()],
      [y.handle()],
    );
    const g = await y.toArray(); // g[(b * np + j) * COLUMNS + c] = q[first + b * COLUMNS + c] . p[j]
    for (let r = 0; r < rows; r++) {
      const [b, c] = [Math.floor(r / COLUMNS), r % COLUMNS];
      const base = b * np * COLUMNS + c;
      const qq = qn[first + r]!;
      for (let j = 0; j < np; j++) d2[r * np + j] = Math.max(0, qq + pn[j]! - 2 * g[base + j * COLUMNS]!);
    }
    visit(first, rows, d2);
  }
}
