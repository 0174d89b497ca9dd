import { describe, expect, it } from 'vitest';
import { CryptoRng } from '../../src/core/index.ts';
import {
  generateEd25519,
  generateX25519,
  signEd25519,
  verifyEd25519,
  x25519PrivateFromRaw,
  x25519PublicOf,
  x25519Shared,
} from '../../src/learn/secagg/index.ts';

describe('keys from the CSPRNG path (generator with JWK output)', () => {
  it('X25519: raw private and public bytes describe the returned key, and agreements match', () => {
    const rng = new CryptoRng();
    for (let i = 0; i < 20; i++) {
      const a = generateX25519(rng);
      const b = generateX25519(rng);
      expect(a.privateRaw.length).toBe(32);
      expect(a.publicRaw.length).toBe(32);
      // The raw d rebuilds a key whose public key is the advertised one (what the server checks).
      const rebuilt = x25519PrivateFromRaw(a.privateRaw);
      expect(Buffer.from(x25519PublicOf(rebuilt)).equals(Buffer.from(a.publicRaw))).toBe(true);
      const ab = x25519Shared(a.privateKey, b.publicRaw);
      const ba = x25519Shared(b.privateKey, a.publicRaw);
      expect(Buffer.from(ab).equals(Buffer.from(ba))).toBe(true);
    }
  });

  it('Ed25519: signatures of the returned key verify under its raw public key, others do not', () => {
    const rng = new CryptoRng();
    const a = generateEd25519(rng);
    const b = generateEd25519(rng);
    const m = new Uint8Array([1, 2, 3]);
    expect(verifyEd25519(a.publicRaw, m, signEd25519(a.privateKey, m))).toBe(true);
    expect(verifyEd25519(b.publicRaw, m, signEd25519(a.privateKey, m))).toBe(false);
  });
});
