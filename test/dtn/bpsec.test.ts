import { describe, expect, it } from 'vitest';
import {
  AesVariant,
  addBcb,
  addBib,
  aesKeyUnwrap,
  aesKeyWrap,
  type Bundle,
  decodeAsb,
  decodeBundle,
  decryptBcb,
  encodeBundle,
  integrityProtectedPlaintext,
  ipn,
  payloadBlock,
  SecurityError,
  ShaVariant,
  verifyBib,
} from '../../src/dtn/index.ts';
import { type BundleVector, hex, loadVector, toHex } from './vectors.ts';

const bundles = loadVector<BundleVector[]>('bpv7/bundles.json');
// biome-ignore lint/suspicious/noExplicitAny: JSON vector file with per-example shapes
const params = loadVector<{ commonValues: any; examples: any[] }>('bpv7/rfc9173-params.json');
const byName = (n: string): Bundle =>
  decodeBundle(hex((bundles.find((b) => b.name === n) as BundleVector).hex), { lenient: true });
const hexOf = (n: string): string => (bundles.find((b) => b.name === n) as BundleVector).hex;
const [a1, a2, a3, a4] = params.examples;
const payloadText = 'Ready to generate a 32-byte payload';

describe('RFC 9173 Appendix A (../shared/vectors/bpv7/rfc9173-params.json)', () => {
  it('A.1: BIB-HMAC-SHA512 verifies, and signing the original reproduces the final bundle', () => {
    const final = byName('rfc9173-A.1-final-bib-hmac-sha512');
    const key = hex(a1.keyHex);
    expect(toHex(integrityProtectedPlaintext(final, 1, 0, { number: 2, flags: 0 }))).toBe(
      a1.ipptHex,
    );
    verifyBib(final, 2, key);
    const signed = addBib(byName('rfc9173-A.1-original'), {
      targets: [1],
      source: ipn(2, 1),
      key,
      shaVariant: ShaVariant.HmacSha512,
      scopeFlags: 0,
      blockNumber: 2,
    });
    expect(toHex(encodeBundle(signed))).toBe(hexOf('rfc9173-A.1-final-bib-hmac-sha512'));
    const wrongKey = key.slice();
    wrongKey[0] = (wrongKey[0] as number) ^ 1;
    expect(() => verifyBib(final, 2, wrongKey)).toThrow(SecurityError);
  });

  it('A.2: AES-KW and AES-128-GCM decrypt the payload; encrypting reproduces the final bundle', () => {
    expect(toHex(aesKeyWrap(hex(a2.keyEncryptionKeyHex), hex(a2.contentKeyHex)))).toBe(
      a2.aesWrappedKeyHex,
    );
    expect(toHex(aesKeyUnwrap(hex(a2.keyEncryptionKeyHex), hex(a2.aesWrappedKeyHex)))).toBe(
      a2.contentKeyHex,
    );
    const final = byName('rfc9173-A.2-final-bcb-aes128gcm-keywrap');
    const plain = decryptBcb(final, 2, hex(a2.keyEncryptionKeyHex));
    expect(new TextDecoder().decode(payloadBlock(plain).data)).toBe(payloadText);
    expect(toHex(encodeBundle(plain))).toBe(hexOf('rfc9173-A.2-original'));
    const enc = addBcb(byName('rfc9173-A.2-original'), {
      targets: [1],
      source: ipn(2, 1),
      key: hex(a2.contentKeyHex),
      kek: hex(a2.keyEncryptionKeyHex),
      iv: hex(a2.ivHex),
      aesVariant: AesVariant.A128GCM,
      scopeFlags: 0,
      blockNumber: 2,
    });
    expect(toHex(encodeBundle(enc))).toBe(hexOf('rfc9173-A.2-final-bcb-aes128gcm-keywrap'));
    expect(() => aesKeyUnwrap(hex(a2.contentKeyHex), hex(a2.aesWrappedKeyHex))).toThrow(
      SecurityError,
    );
  });

  it('A.3: BIB over primary and bundle age verifies; BCB decrypts; both reproduce forward', () => {
    const final = byName('rfc9173-A.3-final-bib-and-bcb');
    // The A.3 final bundle passes strict decoding: its BIB covers the primary block.
    decodeBundle(hex(hexOf('rfc9173-A.3-final-bib-and-bcb')));
    expect(toHex(integrityProtectedPlaintext(final, 0, 0, { number: 3, flags: 0 }))).toBe(
      a3.bib.primaryIpptHex,
    );
    verifyBib(final, 3, hex(a3.bib.keyHex));
    const plain = decryptBcb(final, 4, hex(a3.bcb.contentKeyHex));
    expect(new TextDecoder().decode(payloadBlock(plain).data)).toBe(payloadText);
    let fwd = addBib(byName('rfc9173-A.3-original'), {
      targets: [0, 2],
      source: ipn(3, 0),
      key: hex(a3.bib.keyHex),
      shaVariant: ShaVariant.HmacSha256,
      scopeFlags: 0,
      blockNumber: 3,
    });
    fwd = addBcb(fwd, {
      targets: [1],
      source: ipn(2, 1),
      key: hex(a3.bcb.contentKeyHex),
      iv: hex(a3.bcb.ivHex),
      aesVariant: AesVariant.A128GCM,
      scopeFlags: 0,
      blockNumber: 4,
      position: 1,
    });
    expect(toHex(encodeBundle(fwd))).toBe(hexOf('rfc9173-A.3-final-bib-and-bcb'));
  });

  it('A.4: full-scope BCB over BIB and payload decrypts, then the BIB verifies', () => {
    const final = byName('rfc9173-A.4-final-full-scope');
    const plain = decryptBcb(final, 2, hex(a4.bcb.contentKeyHex));
    expect(toHex(plain.blocks.find((b) => b.number === 3)?.data ?? new Uint8Array())).toBe(
      a4.bib.asbHex,
    );
    expect(toHex(integrityProtectedPlaintext(plain, 1, 7, { number: 3, flags: 0 }))).toBe(
      a4.bib.ipptHex,
    );
    verifyBib(plain, 3, hex(a4.bib.keyHex));
    let fwd = addBib(byName('rfc9173-A.4-original'), {
      targets: [1],
      source: ipn(2, 1),
      key: hex(a4.bib.keyHex),
      shaVariant: ShaVariant.HmacSha384,
      scopeFlags: 7,
      blockNumber: 3,
    });
    fwd = addBcb(fwd, {
      targets: [3, 1],
      source: ipn(2, 1),
      key: hex(a4.bcb.contentKeyHex),
      iv: hex(a4.bcb.ivHex),
      aesVariant: AesVariant.A256GCM,
      scopeFlags: 7,
      blockNumber: 2,
      position: 1,
    });
    expect(toHex(encodeBundle(fwd))).toBe(hexOf('rfc9173-A.4-final-full-scope'));
  });

  it('rejects a tampered ciphertext and a tampered payload', () => {
    const final = byName('rfc9173-A.3-final-bib-and-bcb');
    const p = payloadBlock(final);
    const flipped = p.data.slice();
    flipped[0] = (flipped[0] as number) ^ 1;
    const bad = {
      primary: final.primary,
      blocks: final.blocks.map((b) => (b === p ? { ...b, data: flipped } : b)),
    };
    expect(() => decryptBcb(bad, 4, hex(a3.bcb.contentKeyHex))).toThrow(SecurityError);
    const a1final = byName('rfc9173-A.1-final-bib-hmac-sha512');
    const p1 = payloadBlock(a1final);
    const bad1 = {
      primary: a1final.primary,
      blocks: a1final.blocks.map((b) => (b === p1 ? { ...b, data: flipped } : b)),
    };
    expect(() => verifyBib(bad1, 2, hex(a1.keyHex))).toThrow(SecurityError);
  });

  it('decodes the ASB of each example and reports malformed ones as typed errors', () => {
    expect(decodeAsb(hex(a1.asbHex)).targets).toEqual([1]);
    expect(decodeAsb(hex(a3.bib.asbHex)).targets).toEqual([0, 2]);
    for (let i = 1; i < 20; i++)
      expect(() => decodeAsb(hex(a1.asbHex).slice(0, i))).toThrow(SecurityError);
  });
});
