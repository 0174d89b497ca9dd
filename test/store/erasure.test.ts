import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ERASURE_ERROR_CODES,
  isErasureError,
  ReedSolomon,
  RS_SHARDS_MAX,
  wasmSimdAvailable,
} from '../../src/store/erasure/index.ts';
import { createPortableKernel } from '../../src/store/erasure/kernel-portable.ts';
import { createWasmKernel } from '../../src/store/erasure/kernel-wasm.ts';

interface RsVector {
  dataShards: number;
  parityShards: number;
  data: number[][];
  parity: number[][];
}
interface RsVectorFile {
  vectors: RsVector[];
  derivedParityRowsOfEncodingMatrix: { rows: number[][] };
}

const vectorFile = JSON.parse(
  readFileSync(
    new URL('../../../shared/vectors/reed-solomon/vectors.json', import.meta.url),
    'utf8',
  ),
) as RsVectorFile;

/** Reference multiply by shift-and-add with reduction by 0x11D: independent of the log tables. */
function slowMul(a: number, b: number): number {
  let r = 0;
  let x = a;
  for (let y = b; y > 0; y >>= 1) {
    if (y & 1) r ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  return r;
}

/** Reference encoder straight from the definition, parity[p][j] = XOR_i E[k+p][i] · d[i][j]. */
function slowEncode(
  matrix: Uint8Array,
  k: number,
  m: number,
  data: readonly Uint8Array[],
): Uint8Array[] {
  const size = data[0]!.length;
  return Array.from({ length: m }, (_, p) => {
    const out = new Uint8Array(size);
    for (let j = 0; j < size; j++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc ^= slowMul(matrix[(k + p) * k + i]!, data[i]![j]!);
      out[j] = acc;
    }
    return out;
  });
}

/** Byte-exact comparison of shard lists; vitest's deep toEqual is far too slow on big arrays. */
function sameShards(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((s, i) => Buffer.from(s).equals(b[i]!));
}

const kernels = wasmSimdAvailable()
  ? (['wasm-simd', 'portable'] as const)
  : (['portable'] as const);

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isErasureError(e) ? e.code : `not an ErasureError: ${String(e)}`;
  }
  return undefined;
}

describe('known answers (Backblaze / klauspost 5+5)', () => {
  const v = vectorFile.vectors[0]!;
  it.each(kernels)('reproduces the parity with the %s kernel', (kernel) => {
    const rs = new ReedSolomon(v.dataShards, v.parityShards, { kernel });
    const data = v.data.map((d) => Uint8Array.from(d));
    expect(rs.encode(data).map((p) => Array.from(p))).toEqual(v.parity);
    const all = [...data, ...v.parity.map((p) => Uint8Array.from(p))];
    expect(rs.verify(all)).toBe(true);
    // The vector's negative check: add 1 to byte 0 of shard 8, verification must fail.
    all[8]![0] = (all[8]![0]! + 1) & 0xff;
    expect(rs.verify(all)).toBe(false);
  });

  it('has the encoding matrix rows the vector file derives', () => {
    const rs = new ReedSolomon(5, 5);
    const m = rs.encodingMatrix();
    const rows = Array.from({ length: 5 }, (_, p) =>
      Array.from(m.subarray((5 + p) * 5, (6 + p) * 5)),
    );
    expect(rows).toEqual(vectorFile.derivedParityRowsOfEncodingMatrix.rows);
    // Systematic: the top 5x5 block is the identity.
    for (let r = 0; r < 5; r++)
      for (let c = 0; c < 5; c++) expect(m[r * 5 + c]).toBe(r === c ? 1 : 0);
  });

  it('rebuilds the vector from its last 5 shards', () => {
    const rs = new ReedSolomon(5, 5);
    const shards = [...v.data, ...v.parity].map((s) => Uint8Array.from(s));
    const out = rs.reconstruct([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      ...shards.slice(5),
    ]);
    expect(out.map((s) => Array.from(s))).toEqual([...v.data, ...v.parity]);
  });
});

describe('kernels agree', () => {
  it('SIMD and portable kernels give identical output on random inputs', () => {
    if (!wasmSimdAvailable()) return;
    const wasm = createWasmKernel()!;
    const portable = createPortableKernel();
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 11 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (nIn, nOut, len, seed) => {
          let s = seed;
          const next = (): number => {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            return s >>> 24;
          };
          const coeffs = Uint8Array.from({ length: nIn * nOut }, next);
          // Random byte offsets exercise the portable kernel's word path and its byte fallback.
          const inputs = Array.from({ length: nIn }, () =>
            Uint8Array.from({ length: len + 3 }, next).subarray(next() & 3),
          ).map((a) => a.subarray(0, len));
          const a = Array.from({ length: nOut }, () => new Uint8Array(len).fill(0xaa));
          const b = Array.from({ length: nOut }, () => new Uint8Array(len).fill(0x55));
          wasm.mulRows(coeffs, inputs, a, len);
          portable.mulRows(coeffs, inputs, b, len);
          expect(sameShards(a, b)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('SIMD kernel streams long shards in chunks correctly (several chunks, ragged tail)', () => {
    if (!wasmSimdAvailable()) return;
    const k = 10;
    const m = 4;
    const size = 300_001;
    const data = Array.from({ length: k }, (_, i) => {
      const d = new Uint8Array(size);
      for (let j = 0; j < size; j++) d[j] = (j * 31 + i * 7 + (j >> 9)) & 0xff;
      return d;
    });
    const fast = new ReedSolomon(k, m, { kernel: 'wasm-simd' }).encode(data);
    const slow = new ReedSolomon(k, m, { kernel: 'portable' }).encode(data);
    expect(sameShards(fast, slow)).toBe(true);
  });
});

describe('properties', () => {
  const arbCode = fc
    .record({
      k: fc.integer({ min: 1, max: 12 }),
      m: fc.integer({ min: 0, max: 6 }),
      size: fc.integer({ min: 1, max: 200 }),
    })
    .chain(({ k, m, size }) =>
      fc.record({
        k: fc.constant(k),
        m: fc.constant(m),
        data: fc.array(fc.uint8Array({ minLength: size, maxLength: size }), {
          minLength: k,
          maxLength: k,
        }),
        lost: fc.shuffledSubarray(
          Array.from({ length: k + m }, (_, i) => i),
          { minLength: 0, maxLength: m },
        ),
      }),
    );

  it.each(kernels)('encode matches the definition (%s)', (kernel) => {
    fc.assert(
      fc.property(arbCode, ({ k, m, data }) => {
        const rs = new ReedSolomon(k, m, { kernel });
        expect(sameShards(rs.encode(data), slowEncode(rs.encodingMatrix(), k, m, data))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it.each(kernels)('any k of k+m shards reconstruct all of them (%s)', (kernel) => {
    fc.assert(
      fc.property(arbCode, ({ k, m, data, lost }) => {
        const rs = new ReedSolomon(k, m, { kernel });
        const all = [...data, ...rs.encode(data)];
        expect(rs.verify(all)).toBe(true);
        const holes: (Uint8Array | undefined)[] = all.slice();
        for (const i of lost) holes[i] = undefined;
        const back = rs.reconstruct(holes);
        expect(sameShards(back, all)).toBe(true);
        // Present shards are passed through, not copied.
        for (let i = 0; i < all.length; i++) if (!lost.includes(i)) expect(back[i]).toBe(all[i]);
      }),
      { numRuns: 80 },
    );
  });

  it('any single-byte change in any shard makes verify fail', () => {
    fc.assert(
      fc.property(
        arbCode,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        ({ k, m, data }, where, delta) => {
          if (m === 0) return;
          const rs = new ReedSolomon(k, m);
          const all = [...data, ...rs.encode(data)];
          const shard = all[where % all.length]!;
          const j = Math.floor(where / all.length) % shard.length;
          shard[j] = shard[j]! ^ delta;
          expect(rs.verify(all)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('encodeInto writes the same parity into caller buffers', () => {
    const rs = new ReedSolomon(6, 3);
    const data = Array.from({ length: 6 }, (_, i) =>
      Uint8Array.from({ length: 777 }, (_, j) => (i * 13 + j) & 0xff),
    );
    const parity = Array.from({ length: 3 }, () => new Uint8Array(777).fill(9));
    rs.encodeInto(data, parity);
    expect(sameShards(parity, rs.encode(data))).toBe(true);
  });
});

describe('stripes in wasm memory', () => {
  it('encode and reconstruct in place match the copying API on random codes and losses', () => {
    if (!wasmSimdAvailable()) return;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (k, m, size, seed) => {
          let x = seed | 1;
          const rs = new ReedSolomon(k, m);
          const stripe = rs.createStripe(size);
          for (const d of stripe.data) {
            for (let j = 0; j < size; j++) {
              x = (Math.imul(x, 1103515245) + 12345) >>> 0;
              d[j] = x >>> 24;
            }
          }
          stripe.encode();
          const copies = stripe.shards.map((s) => s.slice());
          expect(sameShards(copies.slice(k), rs.encode(copies.slice(0, k)))).toBe(true);
          const lost = Array.from({ length: k + m }, (_, i) => i)
            .sort(() => {
              x = (Math.imul(x, 1103515245) + 12345) >>> 0;
              return (x & 1) - 0.5;
            })
            .slice(0, 1 + (x % m));
          for (const i of lost) stripe.shards[i]!.fill(0xee);
          stripe.reconstruct(lost);
          expect(sameShards(stripe.shards, copies)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('works across many cache-sized chunks with a ragged last chunk (10+4, 100003-byte shards)', () => {
    if (!wasmSimdAvailable()) return;
    const rs = new ReedSolomon(10, 4);
    const stripe = rs.createStripe(100_003);
    stripe.data.forEach((d, i) => {
      for (let j = 0; j < d.length; j++) d[j] = (j * 131 + i * 17 + (j >> 11)) & 0xff;
    });
    stripe.encode();
    const copies = stripe.shards.map((s) => s.slice());
    expect(rs.verify(copies)).toBe(true);
    for (const i of [0, 5, 9, 12]) stripe.shards[i]!.fill(0);
    stripe.reconstruct([0, 5, 9, 12]);
    expect(sameShards(stripe.shards, copies)).toBe(true);
  });

  it('rejects bad loss lists and sizes with typed errors', () => {
    if (!wasmSimdAvailable()) return;
    const stripe = new ReedSolomon(4, 2).createStripe(100);
    expect(errorCode(() => stripe.reconstruct([0, 1, 2]))).toBe(ERASURE_ERROR_CODES.tooFewShards);
    expect(errorCode(() => stripe.reconstruct([1, 1]))).toBe(ERASURE_ERROR_CODES.shardCount);
    expect(errorCode(() => stripe.reconstruct([6]))).toBe(ERASURE_ERROR_CODES.shardCount);
    expect(errorCode(() => new ReedSolomon(4, 2).createStripe(0))).toBe(
      ERASURE_ERROR_CODES.shardSize,
    );
    expect(errorCode(() => new ReedSolomon(4, 2, { kernel: 'portable' }).createStripe(8))).toBe(
      ERASURE_ERROR_CODES.kernelUnavailable,
    );
  });
});

describe('reconstructInto', () => {
  it('writes missing shards into caller buffers in index order and rejects short pools', () => {
    const rs = new ReedSolomon(5, 3);
    const data = Array.from({ length: 5 }, (_, i) =>
      Uint8Array.from({ length: 333 }, (_, j) => (i * 77 + j * 3) & 0xff),
    );
    const all = [...data, ...rs.encode(data)];
    const holes: (Uint8Array | undefined)[] = all.slice();
    holes[1] = undefined;
    holes[6] = undefined;
    const pool = [new Uint8Array(333), new Uint8Array(333), new Uint8Array(333).fill(7)];
    const back = rs.reconstructInto(holes, pool);
    expect(back[1]).toBe(pool[0]);
    expect(back[6]).toBe(pool[1]);
    expect(pool[2]!.every((b) => b === 7)).toBe(true);
    expect(sameShards(back, all)).toBe(true);
    expect(errorCode(() => rs.reconstructInto(holes, [new Uint8Array(333)]))).toBe(
      ERASURE_ERROR_CODES.shardCount,
    );
    expect(
      errorCode(() => rs.reconstructInto(holes, [new Uint8Array(332), new Uint8Array(332)])),
    ).toBe(ERASURE_ERROR_CODES.shardSize);
  });
});

describe('reconstructSomeInto', () => {
  it('rebuilds exactly the wanted shards, equal to a full reconstruct, and leaves the rest missing', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 200 }),
        fc.infiniteStream(fc.nat()),
        (k, m, len, picks) => {
          const rs = new ReedSolomon(k, m);
          const data = Array.from({ length: k }, (_, i) =>
            Uint8Array.from({ length: len }, (_, j) => (i * 31 + j * 7 + k) & 0xff),
          );
          const all = [...data, ...rs.encode(data)];
          const it = picks[Symbol.iterator]();
          const next = () => it.next().value as number;
          const lost = [...new Set(Array.from({ length: m }, () => next() % (k + m)))].sort(
            (a, b) => a - b,
          );
          const wanted = lost.filter(() => next() % 2 === 0);
          const holes = all.map((x, i) => (lost.includes(i) ? undefined : x));
          const bufs = wanted.map(() => new Uint8Array(len));
          const out = rs.reconstructSomeInto(holes, wanted, bufs);
          for (let i = 0; i < k + m; i++) {
            if (lost.includes(i) && !wanted.includes(i)) expect(out[i]).toBeUndefined();
            else expect(Buffer.compare(Buffer.from(out[i]!), Buffer.from(all[i]!))).toBe(0);
          }
          for (const [j, w] of wanted.entries()) expect(out[w]).toBe(bufs[j]);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('rejects wanted shards that are present, unordered, or without a buffer', () => {
    const rs = new ReedSolomon(3, 2);
    const data = [Uint8Array.of(1, 2), Uint8Array.of(3, 4), Uint8Array.of(5, 6)];
    const all: (Uint8Array | undefined)[] = [...data, ...rs.encode(data)];
    all[0] = undefined;
    all[4] = undefined;
    const two = () => [new Uint8Array(2), new Uint8Array(2)];
    expect(errorCode(() => rs.reconstructSomeInto(all, [1], two()))).toBe(
      ERASURE_ERROR_CODES.shardCount,
    );
    expect(errorCode(() => rs.reconstructSomeInto(all, [4, 0], two()))).toBe(
      ERASURE_ERROR_CODES.shardCount,
    );
    expect(errorCode(() => rs.reconstructSomeInto(all, [0, 4], [new Uint8Array(2)]))).toBe(
      ERASURE_ERROR_CODES.shardCount,
    );
    expect(errorCode(() => rs.reconstructSomeInto(all, [0], [new Uint8Array(3)]))).toBe(
      ERASURE_ERROR_CODES.shardSize,
    );
  });
});

describe('limits and bad input', () => {
  it('supports 256 shards in total (the largest code GF(2^8) allows) and rejects 257', () => {
    const rs = new ReedSolomon(200, RS_SHARDS_MAX - 200);
    const data = Array.from({ length: 200 }, (_, i) => Uint8Array.of(i, 255 - i, i ^ 0x5a));
    const all = [...data, ...rs.encode(data)];
    const holes: (Uint8Array | undefined)[] = all.slice();
    for (let i = 0; i < 56; i++) holes[i * 4] = undefined;
    expect(sameShards(rs.reconstruct(holes), all)).toBe(true);
    expect(errorCode(() => new ReedSolomon(200, 57))).toBe(ERASURE_ERROR_CODES.invalidParams);
  });

  it('rejects bad parameters with ERASURE_INVALID_PARAMS', () => {
    for (const [k, m] of [
      [0, 2],
      [3, -1],
      [1.5, 2],
      [Number.NaN, 1],
    ] as const) {
      expect(errorCode(() => new ReedSolomon(k, m))).toBe(ERASURE_ERROR_CODES.invalidParams);
    }
  });

  it('rejects wrong counts, unequal or empty shards, and too few shards', () => {
    const rs = new ReedSolomon(3, 2);
    const d = [new Uint8Array(4), new Uint8Array(4), new Uint8Array(4)];
    expect(errorCode(() => rs.encode(d.slice(0, 2)))).toBe(ERASURE_ERROR_CODES.shardCount);
    expect(errorCode(() => rs.encode([...d, new Uint8Array(4)]))).toBe(
      ERASURE_ERROR_CODES.shardCount,
    );
    expect(errorCode(() => rs.encode([d[0]!, d[1]!, new Uint8Array(5)]))).toBe(
      ERASURE_ERROR_CODES.shardSize,
    );
    expect(
      errorCode(() => rs.encode([new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)])),
    ).toBe(ERASURE_ERROR_CODES.shardSize);
    expect(errorCode(() => rs.verify(d))).toBe(ERASURE_ERROR_CODES.shardCount);
    expect(errorCode(() => rs.encodeInto(d, [new Uint8Array(4), new Uint8Array(3)]))).toBe(
      ERASURE_ERROR_CODES.shardSize,
    );
    const p = rs.encode(d);
    expect(errorCode(() => rs.reconstruct([undefined, undefined, d[2], p[0]]))).toBe(
      ERASURE_ERROR_CODES.shardCount,
    );
    const few = errorCode(() => rs.reconstruct([undefined, undefined, undefined, p[0], p[1]]));
    expect(few).toBe(ERASURE_ERROR_CODES.tooFewShards);
    expect(errorCode(() => rs.reconstruct([undefined, d[1], new Uint8Array(3), p[0], p[1]]))).toBe(
      ERASURE_ERROR_CODES.shardSize,
    );
    // A hostile non-Uint8Array in a shard slot is a typed error, not a crash inside the kernel.
    expect(errorCode(() => rs.encode([d[0]!, d[1]!, [1, 2, 3, 4] as unknown as Uint8Array]))).toBe(
      ERASURE_ERROR_CODES.shardSize,
    );
  });

  it('reconstructs correctly across many patterns with a tiny decode cache (LRU eviction)', () => {
    const rs = new ReedSolomon(4, 3, { decodeCacheEntries: 2 });
    const data = Array.from({ length: 4 }, (_, i) =>
      Uint8Array.from({ length: 50 }, (_, j) => (i * 50 + j) & 0xff),
    );
    const all = [...data, ...rs.encode(data)];
    for (let round = 0; round < 3; round++) {
      for (let a = 0; a < 7; a++) {
        for (let b = a + 1; b < 7; b++) {
          const holes: (Uint8Array | undefined)[] = all.slice();
          holes[a] = undefined;
          holes[b] = undefined;
          expect(sameShards(rs.reconstruct(holes), all)).toBe(true);
        }
      }
    }
  });

  it('demanding an unavailable kernel is a typed error only when SIMD is absent', () => {
    const code = errorCode(() => new ReedSolomon(2, 1, { kernel: 'wasm-simd' }));
    expect(code).toBe(wasmSimdAvailable() ? undefined : ERASURE_ERROR_CODES.kernelUnavailable);
  });
});
