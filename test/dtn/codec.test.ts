import { describe, expect, it } from 'vitest';
import {
  BundleError,
  crc16X25,
  crc32c,
  decodeBundle,
  decodeCanonicalBlock,
  decodeCreationTimestamp,
  decodeEid,
  decodePrimaryBlock,
  encodeBundle,
  encodeCanonicalBlock,
  encodePrimaryBlock,
  inspectBundle,
} from '../../src/dtn/index.ts';
import { type BundleVector, hex, loadVector, toHex } from './vectors.ts';

const vectors = loadVector<BundleVector[]>('bpv7/bundles.json');

function decodeKind(v: BundleVector, lenient: boolean): Uint8Array | undefined {
  const bytes = hex(v.hex);
  switch (v.kind) {
    case 'bundle':
      return encodeBundle(decodeBundle(bytes, { lenient }));
    case 'primary-block':
      return encodePrimaryBlock(decodePrimaryBlock(bytes, { lenient }));
    case 'canonical-block':
      return encodeCanonicalBlock(decodeCanonicalBlock(bytes, { lenient }));
    case 'eid':
      decodeEid(bytes);
      return undefined;
    case 'creation-timestamp':
      decodeCreationTimestamp(bytes);
      return undefined;
  }
}

describe('bpv7 vectors (../shared/vectors/bpv7/bundles.json)', () => {
  it('has the expected number of items', () => {
    expect(vectors.length).toBe(27);
  });
  for (const v of vectors) {
    for (const lenient of [false, true]) {
      const want = lenient ? v.expectLenient : v.expect;
      it(`${v.name} is ${want} (${lenient ? 'lenient' : 'strict'})`, () => {
        if (want === 'invalid') {
          expect(() => decodeKind(v, lenient)).toThrow(BundleError);
          return;
        }
        const re = decodeKind(v, lenient);
        // Valid items re-encode byte-identically unless the input used non-shortest CBOR heads
        // (accepted only by lenient decoding); those re-encode to the deterministic form,
        // which must itself decode to the same bundle.
        if (re !== undefined) {
          if (toHex(re) === v.hex) return;
          expect(lenient).toBe(true);
          const again = decodeBundle(re, { lenient: true });
          expect(again).toEqual(decodeBundle(hex(v.hex), { lenient: true }));
          expect(() => decodeBundle(hex(v.hex))).toThrow(BundleError);
        }
      });
    }
  }

  it('names the rule each strictly invalid bundle breaks', () => {
    const map: Record<string, string> = {
      'primary-crc-missing-without-bib': 'primary-crc-required',
      'zero-creation-time-without-bundle-age-block': 'zero-creation-time-without-bundle-age',
      'duplicate-block-number-2': 'block-number-duplicate',
      'payload-block-number-33': 'payload-number',
      'block1-crc-invalid-crc-type': 'crc-type-invalid',
      'block1-wrong-length': 'block-length',
      'payload-not-last': 'payload-not-last',
      'dest-dtn-ssp-lacks-//': 'eid-dtn-ssp',
    };
    for (const v of vectors.filter((x) => x.kind === 'bundle' && x.expect === 'invalid')) {
      const { problems } = inspectBundle(hex(v.hex));
      const rules = new Set(problems.map((p) => p.rule));
      const wanted = (v.rfc9171RuleViolationsFound ?? [])
        .map((r) => map[r])
        .filter((r) => r !== undefined);
      expect(
        wanted.some((r) => rules.has(r as never)),
        `${v.name}: ${[...rules].join(',')}`,
      ).toBe(true);
    }
  });

  it('lists both presence problems of the RFC 9173 A.1 bundle', () => {
    const v = vectors.find((x) => x.name === 'rfc9173-A.1-original') as BundleVector;
    const rules = inspectBundle(hex(v.hex))
      .problems.map((p) => p.rule)
      .sort();
    expect(rules).toEqual(['primary-crc-required', 'zero-creation-time-without-bundle-age']);
  });
});

describe('CRC (../shared/vectors/bpv7/crc.json)', () => {
  const crcs = loadVector<{
    vectors: { inputHex: string; crc16X25: string; crc32c: string }[];
    standardCheckValues: { input: string; crc16X25: string; crc32c: string };
  }>('bpv7/crc.json');
  for (const v of crcs.vectors) {
    it(`CRC of ${v.inputHex.slice(0, 16)}…`, () => {
      expect(crc16X25(hex(v.inputHex)).toString(16).padStart(4, '0')).toBe(v.crc16X25);
      expect(crc32c(hex(v.inputHex)).toString(16).padStart(8, '0')).toBe(v.crc32c);
    });
  }
  it('check values over "123456789"', () => {
    const s = new TextEncoder().encode(crcs.standardCheckValues.input);
    expect(crc16X25(s).toString(16)).toBe(crcs.standardCheckValues.crc16X25);
    expect(crc32c(s).toString(16)).toBe(crcs.standardCheckValues.crc32c);
  });
});
