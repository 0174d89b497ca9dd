/**
 * Small dense matrices over GF(2^8), row-major in one Uint8Array. Only what the Reed-Solomon
 * code needs: the Vandermonde construction, products, sub-matrices and Gauss-Jordan inversion.
 */
import { gfInv, gfMul, gfPow } from './gf.ts';

/** A rows x cols matrix over GF(2^8), element (r, c) at `data[r * cols + c]`. */
export interface GfMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
}

/** A zero matrix. */
export function zeroMatrix(rows: number, cols: number): GfMatrix {
  return { rows, cols, data: new Uint8Array(rows * cols) };
}

/** The rows x cols Vandermonde matrix V[r][c] = r^c (0^0 = 1), as Backblaze and klauspost build it. */
export function vandermonde(rows: number, cols: number): GfMatrix {
  const m = zeroMatrix(rows, cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m.data[r * cols + c] = gfPow(r, c);
  return m;
}

/** The product a · b. */
export function multiply(a: GfMatrix, b: GfMatrix): GfMatrix {
  if (a.cols !== b.rows)
    throw new RangeError(`matrix shapes ${a.rows}x${a.cols} · ${b.rows}x${b.cols}`);
  const out = zeroMatrix(a.rows, b.cols);
  for (let r = 0; r < a.rows; r++) {
    for (let c = 0; c < b.cols; c++) {
      let acc = 0;
      for (let i = 0; i < a.cols; i++)
        acc ^= gfMul(a.data[r * a.cols + i]!, b.data[i * b.cols + c]!);
      out.data[r * b.cols + c] = acc;
    }
  }
  return out;
}

/** The matrix made of the given rows of `m`, in the given order. */
export function selectRows(m: GfMatrix, rows: readonly number[]): GfMatrix {
  const out = zeroMatrix(rows.length, m.cols);
  rows.forEach((r, i) => {
    out.data.set(m.data.subarray(r * m.cols, (r + 1) * m.cols), i * m.cols);
  });
  return out;
}

/**
 * The inverse of a square matrix by Gauss-Jordan elimination, or `undefined` when it is singular.
 * Sub-matrices of the systematic Vandermonde code are never singular; callers assert that.
 */
export function invert(m: GfMatrix): GfMatrix | undefined {
  const n = m.rows;
  if (m.cols !== n) throw new RangeError(`cannot invert a ${m.rows}x${m.cols} matrix`);
  const w = 2 * n;
  // Augmented [m | I], reduced in place to [I | m^-1].
  const a = new Uint8Array(n * w);
  for (let r = 0; r < n; r++) {
    a.set(m.data.subarray(r * n, (r + 1) * n), r * w);
    a[r * w + n + r] = 1;
  }
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot * w + col] === 0) pivot++;
    if (pivot === n) return undefined;
    if (pivot !== col) {
      const tmp = a.slice(pivot * w, (pivot + 1) * w);
      a.copyWithin(pivot * w, col * w, (col + 1) * w);
      a.set(tmp, col * w);
    }
    const scale = gfInv(a[col * w + col]!);
    for (let c = 0; c < w; c++) a[col * w + c] = gfMul(a[col * w + c]!, scale);
    for (let r = 0; r < n; r++) {
      const f = a[r * w + col]!;
      if (r === col || f === 0) continue;
      for (let c = 0; c < w; c++) a[r * w + c] = a[r * w + c]! ^ gfMul(f, a[col * w + c]!);
    }
  }
  const out = zeroMatrix(n, n);
  for (let r = 0; r < n; r++) out.data.set(a.subarray(r * w + n, (r + 1) * w), r * n);
  return out;
}

/**
 * The systematic (k + m) x k encoding matrix: V · (top k x k of V)^-1, where V[r][c] = r^c.
 * Its top k rows are the identity, so data shards pass through unchanged; rows k.. give parity.
 * This is exactly Backblaze JavaReedSolomon's `buildMatrix` and klauspost's default matrix.
 */
export function systematicMatrix(dataShards: number, parityShards: number): GfMatrix {
  const total = dataShards + parityShards;
  const v = vandermonde(total, dataShards);
  const top = selectRows(
    v,
    Array.from({ length: dataShards }, (_, i) => i),
  );
  const inv = invert(top);
  if (inv === undefined) throw new RangeError('top of the Vandermonde matrix is singular');
  return multiply(v, inv);
}
