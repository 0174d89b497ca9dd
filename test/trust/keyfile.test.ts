import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  generateKeyPair,
  isTrustError,
  readPrivateKey,
  readPublicKey,
  writeKeyPair,
} from '../../src/trust/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'genesis-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    return isTrustError(e) ? e.code : `untyped: ${String(e)}`;
  }
}

describe('key files', () => {
  const kp = generateKeyPair('MLDSA65-Ed25519-SHA512', 'eu1.h1');
  const { privatePath, publicPath } = writeKeyPair(join(dir, 'node'), kp);

  it('private files are created with mode 0600 and round-trip; public files load alone', () => {
    expect(statSync(privatePath).mode & 0o777).toBe(0o600);
    const back = readPrivateKey(privatePath, 'MLDSA65-Ed25519-SHA512');
    expect(Buffer.from(back.secretKey).equals(Buffer.from(kp.secretKey))).toBe(true);
    expect(readPublicKey(publicPath).name).toBe('eu1.h1');
    for (const alg of ['Ed25519', 'X25519-MLKEM768-XWing', 'MLDSA44-Ed25519-SHA512'] as const) {
      const k = generateKeyPair(alg, `k-${alg}`);
      const p = writeKeyPair(join(dir, alg), k);
      expect(
        Buffer.from(readPrivateKey(p.privatePath, alg).publicKey).equals(Buffer.from(k.publicKey)),
      ).toBe(true);
    }
  });

  it('never overwrites an existing key', () => {
    expect(codeOf(() => writeKeyPair(join(dir, 'node'), kp))).toBe('TRUST_EXISTS');
  });

  it('wrong permissions, wrong algorithm, wrong length, mismatched or unknown fields are typed errors', () => {
    chmodSync(privatePath, 0o644);
    expect(codeOf(() => readPrivateKey(privatePath))).toBe('TRUST_KEY_PERMISSIONS');
    chmodSync(privatePath, 0o600);
    expect(codeOf(() => readPrivateKey(privatePath, 'Ed25519'))).toBe('TRUST_WRONG_ALGORITHM');
    const raw = JSON.parse(readFileSync(privatePath, 'utf8')) as Record<string, string>;
    const variant = (name: string, patch: Record<string, unknown>): string => {
      const p = join(dir, `${name}.key`);
      writeFileSync(p, JSON.stringify({ ...raw, ...patch }), { mode: 0o600 });
      return p;
    };
    const sk = Buffer.from(raw.secretKey as string, 'base64');
    expect(
      codeOf(() =>
        readPrivateKey(variant('short', { secretKey: sk.subarray(1).toString('base64') })),
      ),
    ).toBe('TRUST_BAD_LENGTH');
    expect(
      codeOf(() =>
        readPrivateKey(
          variant('long', { secretKey: Buffer.concat([sk, Buffer.from([0])]).toString('base64') }),
        ),
      ),
    ).toBe('TRUST_BAD_LENGTH');
    const other = Buffer.from(sk);
    other[0] = (other[0] ?? 0) ^ 1;
    expect(
      codeOf(() => readPrivateKey(variant('mismatch', { secretKey: other.toString('base64') }))),
    ).toBe('TRUST_KEY_FORMAT');
    expect(codeOf(() => readPrivateKey(variant('extra', { comment: 'hi' })))).toBe(
      'TRUST_KEY_FORMAT',
    );
    expect(codeOf(() => readPrivateKey(variant('alg', { alg: 'RSA-2048' })))).toBe(
      'TRUST_WRONG_ALGORITHM',
    );
    expect(codeOf(() => readPrivateKey(variant('b64', { secretKey: `${raw.secretKey}\n` })))).toBe(
      'TRUST_KEY_FORMAT',
    );
    expect(codeOf(() => readPrivateKey(join(dir, 'missing.key')))).toBe('TRUST_NOT_FOUND');
    expect(codeOf(() => readPrivateKey(publicPath))).toBe('TRUST_KEY_FORMAT');
  });
});
