import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BUNDLE_BLOCKS_MAX,
  type Bundle,
  BundleError,
  CrcType,
  createBundle,
  decodeBundle,
  type Eid,
  encodeBundle,
  inspectBundle,
} from '../../src/dtn/index.ts';
import { type BundleVector, hex, loadVector } from './vectors.ts';

const eidArb: fc.Arbitrary<Eid> = fc.oneof(
  fc.record({ scheme: fc.constant('ipn' as const), node: fc.nat(), service: fc.nat() }),
  fc
    .stringMatching(/^\/\/[a-z0-9.-]{1,20}\/[a-z0-9/]{0,20}$/)
    .map((ssp) => ({ scheme: 'dtn' as const, ssp })),
  fc.constant({ scheme: 'dtn' as const, ssp: 'none' }),
);

const bundleArb: fc.Arbitrary<Bundle> = fc
  .record({
    source: eidArb,
    destination: eidArb,
    reportTo: eidArb,
    payload: fc.uint8Array({ maxLength: 300 }),
    creationTime: fc.oneof(fc.constant(0), fc.nat({ max: 2 ** 45 })),
    sequence: fc.nat(),
    lifetimeMs: fc.nat(),
    crcType: fc.constantFrom(CrcType.Crc16, CrcType.Crc32c),
    hopLimit: fc.option(fc.integer({ min: 1, max: 255 }), { nil: undefined }),
    flags: fc.constantFrom(0, 0x4, 0x20000, 0x40000 | 0x4),
  })
  .map(({ hopLimit, ...r }) =>
    createBundle({ ...r, ...(hopLimit === undefined ? {} : { hopLimit }) }),
  );

/** Decoding must end in a value or a BundleError: never another exception, never a hang. */
function decodeSafely(bytes: Uint8Array, lenient: boolean): Bundle | BundleError {
  try {
    return decodeBundle(bytes, { lenient });
  } catch (e) {
    if (e instanceof BundleError) return e;
    throw e;
  }
}

/** No block data may be a copy: every view shares the input's buffer, so allocation stays O(blocks). */
function assertViews(b: Bundle, input: Uint8Array): void {
  expect(b.blocks.length).toBeLessThanOrEqual(BUNDLE_BLOCKS_MAX);
  let total = 0;
  for (const blk of b.blocks) {
    expect(blk.data.buffer).toBe(input.buffer);
    total += blk.data.length;
  }
  expect(total).toBeLessThanOrEqual(input.length);
}

describe('codec properties', () => {
  it('valid bundles round-trip byte-identically', () => {
    fc.assert(
      fc.property(bundleArb, (b) => {
        const bytes = encodeBundle(b);
        const d = decodeBundle(bytes);
        expect(d.primary).toEqual(b.primary);
        expect(d.blocks.map((x) => ({ ...x, data: [...x.data] }))).toEqual(
          b.blocks.map((x) => ({ ...x, data: [...x.data] })),
        );
        expect(encodeBundle(d)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary bytes end in a value or a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (bytes, lenient) => {
        const r = decodeSafely(bytes, lenient);
        if (!(r instanceof BundleError)) assertViews(r, bytes);
        inspectBundle(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('arbitrary bytes behind a bundle prefix end in a value or a typed error', () => {
    const prefix = hex('9f89071844018202820301820100820100821b000000b5998c982b011a000493e0');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
        const bytes = new Uint8Array([...prefix, ...tail]);
        decodeSafely(bytes, true);
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated valid bundles end in a value or a typed error; CRCs catch single-byte corruption', () => {
    const seeds = loadVector<BundleVector[]>('bpv7/bundles.json')
      .filter((v) => v.kind === 'bundle' && v.expectLenient === 'valid')
      .map((v) => hex(v.hex));
    fc.assert(
      fc.property(
        bundleArb,
        fc.nat(),
        fc.nat({ max: 255 }),
        fc.constantFrom('flip', 'truncate', 'insert', 'delete'),
        (b, at, val, op) => {
          const seed = encodeBundle(b);
          const i = at % seed.length;
          let m: Uint8Array;
          if (op === 'flip') {
            m = seed.slice();
            m[i] = (m[i] as number) ^ (val | 1);
          } else if (op === 'truncate') m = seed.slice(0, i);
          else if (op === 'insert')
            m = new Uint8Array([...seed.slice(0, i), val, ...seed.slice(i)]);
          else m = new Uint8Array([...seed.slice(0, i), ...seed.slice(i + 1)]);
          const r = decodeSafely(m, false);
          // Every block of a createBundle() bundle carries a CRC, so a flipped byte inside a
          // block either breaks the structure or the CRC: it never decodes to a valid bundle.
          if (op === 'flip' && i > 0 && i < seed.length - 1) expect(r).toBeInstanceOf(BundleError);
        },
      ),
      { numRuns: 2000 },
    );
    for (const s of seeds) {
      for (let i = 0; i < s.length; i++) {
        const m = s.slice();
        m[i] = (m[i] as number) ^ 0xff;
        decodeSafely(m, true);
        decodeSafely(s.slice(0, i), true);
      }
    }
  });

  it('refuses lengths beyond the input without allocating them', () => {
    // A primary block claiming a 2^32-byte CRC string, and a payload claiming 2^53-1 bytes.
    const huge = hex('9f88070000820100820100820100820000005b001fffffffffffffff');
    const e = decodeSafely(huge, true);
    expect(e).toBeInstanceOf(BundleError);
    const deep = new Uint8Array([0x9f, ...new Array(100_000).fill(0x81)]);
    expect(decodeSafely(deep, true)).toBeInstanceOf(BundleError);
    const manyBlocks = [0x9f, ...hex('890700018202820101820100820100820001001a0001')];
    expect(decodeSafely(new Uint8Array(manyBlocks), true)).toBeInstanceOf(BundleError);
  });

  it('rejects non-shortest CBOR strictly and accepts it leniently', () => {
    const b = createBundle({
      source: { scheme: 'ipn', node: 1, service: 1 },
      destination: { scheme: 'ipn', node: 2, service: 1 },
      payload: new Uint8Array([1]),
      creationTime: 5,
      sequence: 0,
      lifetimeMs: 1000,
      crcType: CrcType.None,
    });
    const bytes = encodeBundle(b);
    // lifetime 1000 = 0x1903e8; rewrite as 0x1a000003e8 (4-byte form).
    const h = Buffer.from(bytes).toString('hex').replace('1903e8', '1a000003e8');
    const e = decodeSafely(hex(h), false);
    expect(e instanceof BundleError && e.rule).toBe('cbor-non-deterministic');
  });
});
