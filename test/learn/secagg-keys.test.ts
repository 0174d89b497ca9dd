import { createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CryptoRng } from '../../src/core/index.ts';
import {
  generateEd25519,
  generateX25519,
  signEd25519,
  verifyEd25519,
  x25519PublicOfRaw,
  x25519Shared,
  x25519SharedRaw,
} from '../../src/learn/secagg/index.ts';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

describe('X25519 through libsodium', () => {
  it('reproduces RFC 7748 §6.1 (Alice and Bob)', () => {
    const a = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const b = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const pa = x25519PublicOfRaw(a);
    const pb = x25519PublicOfRaw(b);
    expect(Buffer.from(pa).toString('hex')).toBe(
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    );
    expect(Buffer.from(pb).toString('hex')).toBe(
      'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
    );
    const k = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(Buffer.from(x25519SharedRaw(a, pb)).toString('hex')).toBe(k);
    expect(Buffer.from(x25519SharedRaw(b, pa)).toString('hex')).toBe(k);
  });

  it('refuses a small-order peer key with SECAGG_MALFORMED', () => {
    expect(() => x25519SharedRaw(new Uint8Array(32).fill(7), new Uint8Array(32))).toThrow(
      /small-order/,
    );
  });
});

describe('key pairs (libsodium public keys) interoperate with OpenSSL (node:crypto)', () => {
  it('X25519: raw private and public bytes describe the returned key, and agreements match', () => {
    const rng = new CryptoRng();
    for (let i = 0; i < 20; i++) {
      const a = generateX25519(rng);
      const b = generateX25519(rng);
      expect(a.privateRaw.length).toBe(32);
      expect(a.publicRaw.length).toBe(32);
      // The raw d rebuilds a key whose public key is the advertised one (what the server checks).
      // OpenSSL derives the same public key from d (RFC 8410 §7 PKCS#8 import).
      const rebuilt = createPrivateKey({
        key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), a.privateRaw]),
        format: 'der',
        type: 'pkcs8',
      });
      const x = createPublicKey(rebuilt).export({ format: 'jwk' }).x as string;
      expect(Buffer.from(x, 'base64url').equals(Buffer.from(a.publicRaw))).toBe(true);
      const ab = x25519Shared(a.privateKey, b.publicRaw);
      const ba = x25519Shared(b.privateKey, a.publicRaw);
      expect(Buffer.from(ab).equals(Buffer.from(ba))).toBe(true);
      // OpenSSL's agreement (KeyObjects) equals libsodium's (raw bytes).
      expect(Buffer.from(x25519SharedRaw(a.privateRaw, b.publicRaw)).equals(Buffer.from(ab))).toBe(
        true,
      );
    }
  });

  it('Ed25519: OpenSSL signatures of the returned key verify (libsodium) under its raw public key, others do not', () => {
    const rng = new CryptoRng();
    const a = generateEd25519(rng);
    const b = generateEd25519(rng);
    const m = new Uint8Array([1, 2, 3]);
    expect(verifyEd25519(a.publicRaw, m, signEd25519(a.privateKey, m))).toBe(true);
    expect(verifyEd25519(b.publicRaw, m, signEd25519(a.privateKey, m))).toBe(false);
  });
});
