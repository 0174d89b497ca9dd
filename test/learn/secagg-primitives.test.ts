import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  applyPrgMask,
  buildNeighbourhoods,
  checkQuantization,
  chooseSecAggParams,
  decodeSecAggMessage,
  dequantizeSum,
  encodeSecAggMessage,
  isSecAggError,
  LagrangeCache,
  lagrangeAtZero,
  MASK_ADD_WASM_BASE64,
  MaskAccumulator,
  prgExpand,
  quantizationLevelsFor,
  quantizeInto,
  type SecAggSessionConfig,
  SHAMIR_PRIME,
  shamirCombine,
  shamirSplit,
} from '../../src/learn/secagg/index.ts';

describe('Shamir over GF(2^26 − 5)', () => {
  it('uses a prime modulus (trial division)', () => {
    let divisor = 0;
    for (let d = 2; d * d <= SHAMIR_PRIME && divisor === 0; d++)
      if (SHAMIR_PRIME % d === 0) divisor = d;
    expect(divisor).toBe(0);
    expect(SHAMIR_PRIME).toBe(2 ** 26 - 5);
  });

  it('rebuilds the secret from any t of n shares, and not from t − 1', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 2, max: 12 }),
        fc.integer(),
        (secret, n, seed) => {
          const rng = new SeededRng(seed);
          const t = rng.int(1, n);
          const xs = Array.from({ length: n }, (_, i) => 1 + 3 * i + rng.int(0, 2));
          const shares = shamirSplit(secret, xs, t, rng);
          const pick = [...xs.keys()].sort(() => rng.nextFloat() - 0.5).slice(0, t);
          const rebuilt = shamirCombine(
            pick.map((i) => shares[i] as Uint32Array),
            lagrangeAtZero(pick.map((i) => xs[i] as number)),
            32,
          );
          expect(Buffer.from(rebuilt).equals(Buffer.from(secret))).toBe(true);
          if (t >= 2) {
            const fewer = pick.slice(0, t - 1);
            let wrong: Uint8Array | undefined;
            try {
              wrong = shamirCombine(
                fewer.map((i) => shares[i] as Uint32Array),
                lagrangeAtZero(fewer.map((i) => xs[i] as number)),
                32,
              );
            } catch (e) {
              expect(isSecAggError(e, 'SECAGG_TOO_FEW_SHARES')).toBe(true);
            }
            if (wrong !== undefined)
              expect(Buffer.from(wrong).equals(Buffer.from(secret))).toBe(false);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('rejects thresholds outside [1, n]', () => {
    expect(() => shamirSplit(new Uint8Array(32), [1, 2], 3, new SeededRng(1))).toThrow(/threshold/);
  });
});

describe('ChaCha20 PRG', () => {
  it('matches RFC 8439 A.1 test vectors #1 and #2 (all-zero key and nonce, blocks 0 and 1)', () => {
    const ks = new Uint8Array(prgExpand(new Uint8Array(32), 32).buffer);
    expect(Buffer.from(ks).toString('hex')).toBe(
      '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7' +
        'da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586' +
        '9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed' +
        '29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f',
    );
  });

  it("equals OpenSSL's ChaCha20 (node:crypto, an independent implementation) for any seed and length", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 1, max: 20_000 }),
        (seed, n) => {
          // OpenSSL's IV is the 32-bit block counter (little-endian) followed by the 96-bit nonce.
          const openssl = createCipheriv('chacha20', seed, new Uint8Array(16)).update(
            new Uint8Array(4 * n),
          );
          return Buffer.from(prgExpand(seed, n).buffer).equals(openssl);
        },
      ),
      { numRuns: 20 },
    );
  });

  it('gives the same words whatever the chunking (lengths around chunk boundaries)', () => {
    const seed = new SeededRng(5).fill(new Uint8Array(32));
    const long = prgExpand(seed, 20_000);
    for (const n of [1, 3, 8191, 8192, 8193, 16_385])
      expect(Array.from(prgExpand(seed, n))).toEqual(Array.from(long.subarray(0, n)));
  });
});

describe('MaskAccumulator (WebAssembly SIMD)', () => {
  it('embeds exactly the module compiled from wasm/mask-add.wat', async () => {
    const wabt = await (await import('wabt')).default();
    const wat = readFileSync(
      new URL('../../src/learn/secagg/wasm/mask-add.wat', import.meta.url),
      'utf8',
    );
    const bin = wabt.parseWat('mask-add.wat', wat, { simd: true }).toBinary({}).buffer;
    expect(Buffer.from(bin).toString('base64')).toBe(MASK_ADD_WASM_BASE64);
  });

  it('accumulates the same words as the scalar PRG path, for any length', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20_000 }), fc.integer(), (n, seed) => {
        const rng = new SeededRng(seed);
        const y = Uint32Array.from({ length: n }, () => rng.nextU32());
        const s1 = rng.fill(new Uint8Array(32));
        const s2 = rng.fill(new Uint8Array(32));
        const scalar = Uint32Array.from(y);
        applyPrgMask(scalar, s1, 1);
        applyPrgMask(scalar, s2, -1);
        const acc = new MaskAccumulator(n);
        acc.addVector(y);
        acc.applyPrg(s1, 1);
        acc.applyPrg(s2, -1);
        acc.addVector(y, -1);
        acc.addVector(y, 1);
        return Buffer.from(acc.result().buffer).equals(Buffer.from(scalar.buffer));
      }),
      { numRuns: 30 },
    );
  });
});

describe('quantization (Flower style)', () => {
  it('round-trips a sum of clipped vectors within one level per client, and is unbiased', () => {
    const rng = new SeededRng(9);
    const levels = 2 ** 22;
    const clip = 8;
    const n = 5;
    const d = 2000;
    const xs = Array.from({ length: n }, () =>
      Float32Array.from({ length: d }, () => (rng.nextFloat() - 0.5) * 20),
    );
    const sum = new Uint32Array(d);
    const q = new Uint32Array(d);
    for (const x of xs) {
      quantizeInto(x, q, 0, clip, levels, rng);
      for (let i = 0; i < d; i++) sum[i] = ((sum[i] as number) + (q[i] as number)) >>> 0;
    }
    const back = dequantizeSum(sum, n, clip, levels);
    const step = (2 * clip) / (levels - 1);
    let bias = 0;
    for (let i = 0; i < d; i++) {
      const exact = xs.reduce((a, x) => a + Math.max(-clip, Math.min(clip, x[i] as number)), 0);
      expect(Math.abs((back[i] as number) - exact)).toBeLessThanOrEqual(n * step + 1e-9);
      bias += (back[i] as number) - exact;
    }
    expect(Math.abs(bias / d)).toBeLessThan(step);
  });

  it('refuses levels whose sum can wrap 2^32, and picks a safe default', () => {
    expect(() => checkQuantization(1025, 2 ** 22, 8)).toThrowError(
      expect.objectContaining({ code: 'SECAGG_QUANTIZATION_OVERFLOW' }),
    );
    expect(() => checkQuantization(1024, 2 ** 22, 8)).not.toThrow();
    for (const n of [2, 1000, 1025, 10_000, 100_000]) {
      const l = quantizationLevelsFor(n);
      expect(() => checkQuantization(n, l, 8)).not.toThrow();
      expect(l).toBeLessThanOrEqual(2 ** 22);
    }
  });

  it('rejects NaN and infinities', () => {
    expect(() =>
      quantizeInto(Float32Array.of(0, Number.NaN), new Uint32Array(2), 0, 8, 16, new SeededRng(1)),
    ).toThrowError(expect.objectContaining({ code: 'SECAGG_MALFORMED' }));
  });
});

describe('SecAgg+ parameters and graph', () => {
  it('meets the stated bounds with k = O(log n)', () => {
    const ks: number[] = [];
    for (const n of [100, 1000, 10_000, 100_000]) {
      const p = chooseSecAggParams(n, 'plus');
      expect(p.log2InsecureBound).toBeLessThanOrEqual(-40);
      expect(p.log2FailureBound).toBeLessThanOrEqual(-20);
      expect(p.log2DisconnectedBound).toBeLessThanOrEqual(-40);
      expect(p.k % 2).toBe(0);
      expect(2 * p.t - p.k).toBeGreaterThan(0);
      ks.push(p.k);
    }
    // Each ×10 in n adds a roughly constant amount to k (logarithmic growth).
    expect(ks[3] as number).toBeLessThan(2 * (ks[1] as number));
    expect(ks[3] as number).toBeLessThan(200);
  });

  it('falls back to the complete graph when n is small and reports infeasible threat models', () => {
    expect(chooseSecAggParams(20, 'plus').mode).toBe('full');
    expect(() =>
      chooseSecAggParams(100, 'full', { dropoutRate: 0.6, corruptFraction: 0.3 }),
    ).toThrowError(expect.objectContaining({ code: 'SECAGG_PARAMS_INFEASIBLE' }));
  });

  it('builds a symmetric k-regular graph', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 6, max: 60 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer(),
        (n, half, seed) => {
          const k = Math.min(2 * half, n - 2 - ((n - 2) % 2));
          fc.pre(k >= 2);
          const ids = Array.from({ length: n }, (_, i) => i + 1);
          const g = buildNeighbourhoods(ids, k, new SeededRng(seed));
          for (const [u, nb] of g) {
            if (nb.length !== k || nb.includes(u)) return false;
            for (const v of nb) if (!g.get(v)?.includes(u)) return false;
          }
          return g.size === n;
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('wire codec', () => {
  const config: SecAggSessionConfig = {
    sessionId: new Uint8Array(16).fill(7),
    mode: 'full',
    n: 4,
    t: 2,
    k: 3,
    vectorLength: 5,
  };
  it('round-trips messages with word vectors', () => {
    const msg = {
      kind: 'masked-input' as const,
      session: config.sessionId,
      from: 2,
      y: Uint32Array.of(1, 2, 3, 0xffffffff, 0),
    };
    const back = decodeSecAggMessage(encodeSecAggMessage(msg), config);
    expect(back).toEqual(msg);
  });
  it('rejects garbage, wrong sizes and unknown kinds with SECAGG_MALFORMED', () => {
    const bad = [
      new Uint8Array([0xff, 0x00, 0x13]),
      encodeSecAggMessage({
        kind: 'masked-input',
        session: config.sessionId,
        from: 2,
        y: Uint32Array.of(1, 2),
      }),
      encodeSecAggMessage({
        kind: 'advertise',
        session: config.sessionId,
        from: 9,
        cPk: new Uint8Array(32),
        sPk: new Uint8Array(32),
        sigPk: new Uint8Array(32),
      }),
      encodeSecAggMessage({
        kind: 'advertise',
        session: config.sessionId,
        from: 1,
        cPk: new Uint8Array(31),
        sPk: new Uint8Array(32),
        sigPk: new Uint8Array(32),
      }),
    ];
    for (const b of bad)
      expect(() => decodeSecAggMessage(b, config)).toThrowError(
        expect.objectContaining({ code: 'SECAGG_MALFORMED' }),
      );
  });
});

describe('LagrangeCache', () => {
  it('derives coefficients of a base set minus one element exactly as the direct formula', () => {
    const base = [2, 3, 5, 8, 13, 21, 34];
    const cache = new LagrangeCache(base);
    for (let drop = 0; drop < base.length; drop++) {
      const xs = base.filter((_, i) => i !== drop);
      expect(Array.from(cache.get(xs))).toEqual(Array.from(lagrangeAtZero(xs)));
    }
    expect(Array.from(cache.get([1, 4, 9]))).toEqual(Array.from(lagrangeAtZero([1, 4, 9])));
  });
});
