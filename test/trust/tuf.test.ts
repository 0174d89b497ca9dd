import { describe, expect, it } from 'vitest';
import {
  canonicalBytes,
  isTrustError,
  type MemoryRepoStore,
  signMetadata,
  storeMirror,
  type TargetFile,
  type TargetsSigned,
  TUF_TIMESTAMP_BYTES_MAX,
  TufClient,
  verifySecondaryImage,
} from '../../src/trust/index.ts';
import { cloneStore, failure, makeFixture, ORIGIN, signerFor } from './tuf-fixture.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function envelope(
  store: MemoryRepoStore,
  path: string,
): { signed: Record<string, unknown>; signatures: unknown[] } {
  return JSON.parse(new TextDecoder().decode(store.read(path)));
}

async function released() {
  const f = makeFixture();
  f.repo.publish('firmware.bin', enc('firmware v1'), ['tile-v1']);
  await f.server.publishCheckpoint();
  return f;
}

describe('TUF client workflow (§5) with transparency', () => {
  it('installs a released target with a witnessed inclusion proof', async () => {
    const f = await released();
    const c = f.client();
    await c.refresh();
    const t = await c.download('firmware.bin');
    expect(new TextDecoder().decode(t.bytes)).toBe('firmware v1');
    expect(t.cosigners.length).toBeGreaterThanOrEqual(2);
    expect(t.info.custom.log.origin).toBe(ORIGIN);
  });

  it('refuses a signed target whose release is not under a witnessed checkpoint', async () => {
    const f = await released();
    f.repo.publish('later.bin', enc('not yet witnessed'), ['tile-v1']);
    const c = f.client();
    await c.refresh();
    expect((await failure(c.download('later.bin'))).code).toBe('TRUST_NOT_LOGGED');
    await f.server.publishCheckpoint();
    expect((await c.download('later.bin')).bytes.length).toBe(17);
  });

  it('root rotation: the client walks 1 → 2 → 3, each signed by old and new root keys', async () => {
    const f = await released();
    const c = f.client();
    await c.refresh();
    f.repo.rotateRoot({ ...f.signers, root: [signerFor('root-2')] });
    f.repo.rotateRoot({
      ...f.signers,
      root: [signerFor('root-3')],
      timestamp: [signerFor('timestamp-2')],
    });
    await c.refresh();
    expect(c.trusted.root.version).toBe(3);
    // A root 4 signed only by the new key (not by root 3's key) is refused.
    const bad = cloneStore(f.store);
    const r3 = envelope(f.store, 'metadata/3.root.json').signed;
    bad.write(
      'metadata/4.root.json',
      signMetadata({ ...r3, version: 4 } as never, [signerFor('root-evil')]),
    );
    expect((await failure(f.client(bad).refresh())).code).toBe('TRUST_BAD_SIGNATURE');
  });
});

describe('TUF attacks (one test per attack of the TUF specification)', () => {
  it('arbitrary installation: metadata signed by an attacker key and unlisted targets are refused', async () => {
    const f = await released();
    const evil = cloneStore(f.store);
    const t = envelope(f.store, 'metadata/targets.json').signed as unknown as TargetsSigned;
    evil.write(
      'metadata/targets.json',
      signMetadata(t, [signerFor('evil-1'), signerFor('evil-2')]),
    );
    expect((await failure(f.client(evil).refresh())).code).toMatch(
      /TRUST_TARGET_MISMATCH|TRUST_BAD_SIGNATURE/,
    );
    const c = f.client();
    await c.refresh();
    const r = await failure(c.download('backdoor.bin'));
    expect(r).toEqual({ code: 'TRUST_TARGET_MISMATCH', attack: 'arbitrary installation' });
  });

  it('endless data: oversized timestamp and a target longer than its signed length are cut off', async () => {
    const f = await released();
    const evil = cloneStore(f.store);
    evil.write('metadata/timestamp.json', new Uint8Array(TUF_TIMESTAMP_BYTES_MAX * 4).fill(0x20));
    expect((await failure(f.client(evil).refresh())).code).toBe('TRUST_ENDLESS_DATA');
    const evil2 = cloneStore(f.store);
    evil2.write('targets/firmware.bin', new Uint8Array(10_000_000).fill(1));
    const c = f.client(evil2);
    await c.refresh();
    expect(await failure(c.download('firmware.bin'))).toEqual({
      code: 'TRUST_ENDLESS_DATA',
      attack: 'endless data',
    });
  });

  it('extraneous dependencies: an extra target slipped into targets.json breaks its snapshot hash', async () => {
    const f = await released();
    const evil = cloneStore(f.store);
    const env = envelope(f.store, 'metadata/targets.json');
    const targets = env.signed.targets as Record<string, unknown>;
    targets['dependency.bin'] = targets['firmware.bin'];
    evil.write('metadata/targets.json', canonicalBytes(env));
    // Longer than the length snapshot signed (endless data) or, padded to length, a hash mismatch.
    expect((await failure(f.client(evil).refresh())).code).toMatch(
      /TRUST_ENDLESS_DATA|TRUST_TARGET_MISMATCH/,
    );
  });

  it('fast-forward: a timestamp at version 1000 from a compromised key is forgotten after key rotation', async () => {
    const f = await released();
    const c = f.client();
    await c.refresh();
    const evil = cloneStore(f.store);
    const ts = envelope(f.store, 'metadata/timestamp.json').signed;
    evil.write(
      'metadata/timestamp.json',
      signMetadata({ ...ts, version: 1000 } as never, f.signers.timestamp),
    );
    const victim = new TufClient({
      trustedRoot: f.store.read('metadata/1.root.json') as Uint8Array,
      mirrors: [storeMirror('evil', evil)],
      clock: f.clock,
      log: f.server,
      logPolicies: [f.policy],
    });
    await victim.refresh().catch(() => undefined);
    expect(victim.trusted.timestamp?.version).toBe(1000);
    // Before any rotation, the honest timestamp (version < 1000) now looks like a rollback.
    expect((await failure(victimOn(victim, f.store).refresh())).code).toBe('TRUST_ROLLBACK');
    f.repo.rotateRoot({ ...f.signers, timestamp: [signerFor('timestamp-2')] });
    // The victim (who trusts v1000) now reads from the honest repository with the rotated root.
    const healed = victimOn(victim, f.store);
    await healed.refresh();
    expect(healed.trusted.root.version).toBe(2);
    expect(healed.trusted.timestamp?.version).toBeLessThan(1000);
  });

  it('indefinite freeze: validly signed but expired metadata is refused', async () => {
    const f = await released();
    const frozen = cloneStore(f.store);
    f.clock.advanceSync(2 * 86_400_000);
    expect(await failure(f.client(frozen).refresh())).toMatchObject({
      code: 'TRUST_EXPIRED',
      attack: 'indefinite freeze',
    });
  });

  it('malicious mirrors: a mirror serving bad data is skipped in favour of one that verifies', async () => {
    const f = await released();
    const evil = cloneStore(f.store);
    evil.write('targets/firmware.bin', enc('firmware v1 but evil'));
    evil.write('metadata/snapshot.json', enc('{}'));
    const c = new TufClient({
      trustedRoot: f.store.read('metadata/1.root.json') as Uint8Array,
      mirrors: [storeMirror('evil', evil), storeMirror('good', f.store)],
      clock: f.clock,
      log: f.server,
      logPolicies: [f.policy],
    });
    await c.refresh();
    expect(new TextDecoder().decode((await c.download('firmware.bin')).bytes)).toBe('firmware v1');
    const onlyEvil = f.client(evil);
    await expect(onlyEvil.refresh()).rejects.toThrow();
  });

  it('mix-and-match: targets.json of another version than snapshot names is refused', async () => {
    const f = await released();
    const old = cloneStore(f.store);
    f.repo.publish('firmware.bin', enc('firmware v2'), ['tile-v1']);
    const mixed = cloneStore(f.store);
    mixed.write('metadata/targets.json', old.read('metadata/targets.json') as Uint8Array);
    expect((await failure(f.client(mixed).refresh())).code).toMatch(
      /TRUST_TARGET_MISMATCH|TRUST_METADATA/,
    );
  });

  it('rollback: an older, validly signed timestamp is refused after a newer one was seen', async () => {
    const f = await released();
    const old = cloneStore(f.store);
    f.repo.publish('firmware.bin', enc('firmware v2'), ['tile-v1']);
    const c = f.client();
    await c.refresh();
    expect(await failure(victimOn(c, old).refresh())).toMatchObject({
      code: 'TRUST_ROLLBACK',
      attack: 'rollback',
    });
  });

  it('key compromise below threshold: one of three targets keys (threshold 2) cannot sign targets', async () => {
    const f = await released();
    const evil = cloneStore(f.store);
    const t = envelope(f.store, 'metadata/targets.json').signed as unknown as TargetsSigned;
    const forged = {
      ...t,
      targets: {
        ...t.targets,
        'firmware.bin': { ...(t.targets['firmware.bin'] as TargetFile), length: 5 },
      },
    };
    evil.write('metadata/targets.json', signMetadata(forged, [f.signers.targets[0] as never]));
    // Re-sign snapshot/timestamp too, as if those keys were also compromised: still refused.
    const r = await failure(f.client(evil).refresh());
    expect(r.code).toMatch(/TRUST_BAD_SIGNATURE|TRUST_TARGET_MISMATCH/);
  });

  it('wrong software: a valid image for other hardware, or another target served under this name, is refused', async () => {
    const f = await released();
    f.repo.publish('hub-os.bin', enc('hub image'), ['hub-v1']);
    await f.server.publishCheckpoint();
    const c = f.client(f.store, 'tile-v1');
    await c.refresh();
    expect(await failure(c.download('hub-os.bin'))).toEqual({
      code: 'TRUST_TARGET_MISMATCH',
      attack: 'wrong software',
    });
    const swapped = cloneStore(f.store);
    swapped.write('targets/firmware.bin', f.store.read('targets/hub-os.bin') as Uint8Array);
    const c2 = f.client(swapped);
    await c2.refresh();
    expect((await failure(c2.download('firmware.bin'))).code).toBe('TRUST_TARGET_MISMATCH');
  });
});

describe('signed JSON hygiene', () => {
  it('unknown fields, non-canonical encodings and truncated metadata are typed errors', async () => {
    const f = await released();
    const env = envelope(f.store, 'metadata/timestamp.json');
    const cases: [string, Uint8Array][] = [
      ['unknown field', signMetadata({ ...env.signed, extra: 1 } as never, f.signers.timestamp)],
      ['whitespace', enc(JSON.stringify(env, null, 1))],
      ['truncated', (f.store.read('metadata/timestamp.json') as Uint8Array).subarray(0, 100)],
    ];
    for (const [what, bytes] of cases) {
      const evil = cloneStore(f.store);
      evil.write('metadata/timestamp.json', bytes);
      const r = await failure(f.client(evil).refresh());
      expect([what, r.code]).toEqual([
        what,
        what === 'unknown field' ? 'TRUST_METADATA' : 'TRUST_NON_CANONICAL',
      ]);
    }
  });
});

describe('Uptane split: hub primary (full verification), tile secondary (partial)', () => {
  it('a secondary installs what the primary directs only if targets metadata, hardware and hash check out', async () => {
    const f = await released();
    const primary = f.client(f.store, 'hub-v1');
    await primary.refresh();
    const img = await primary.download('firmware.bin').catch(() => undefined);
    expect(img).toBeUndefined(); // the hub itself is not tile hardware: wrong software for it
    const targetsMetadata = primary.trusted.targetsBytes as Uint8Array;
    const root = primary.trusted.root;
    const state = { root, hardwareId: 'tile-v1', installedVersion: 0, nowMs: f.clock.now() };
    const bytes = f.store.read('targets/firmware.bin') as Uint8Array;
    expect(verifySecondaryImage({ name: 'firmware.bin', bytes, targetsMetadata }, state)).toBe(1);
    const codeOf = (fn: () => unknown): string => {
      try {
        fn();
        return 'accepted';
      } catch (e) {
        return isTrustError(e) ? e.code : String(e);
      }
    };
    expect(
      codeOf(() =>
        verifySecondaryImage({ name: 'firmware.bin', bytes: enc('evil'), targetsMetadata }, state),
      ),
    ).toBe('TRUST_TARGET_MISMATCH');
    expect(
      codeOf(() =>
        verifySecondaryImage(
          { name: 'firmware.bin', bytes, targetsMetadata },
          { ...state, hardwareId: 'pod-v1' },
        ),
      ),
    ).toBe('TRUST_TARGET_MISMATCH');
    expect(
      codeOf(() =>
        verifySecondaryImage(
          { name: 'firmware.bin', bytes, targetsMetadata },
          { ...state, installedVersion: 2 },
        ),
      ),
    ).toBe('TRUST_ROLLBACK');
    const forged = signMetadata(JSON.parse(new TextDecoder().decode(targetsMetadata)).signed, [
      signerFor('evil'),
    ]);
    expect(
      codeOf(() =>
        verifySecondaryImage({ name: 'firmware.bin', bytes, targetsMetadata: forged }, state),
      ),
    ).toBe('TRUST_BAD_SIGNATURE');
  });
});

/** A client that keeps `c`'s trusted state but reads from `store` (same device, new mirror). */
function victimOn(c: TufClient, store: MemoryRepoStore): TufClient {
  const mirror = storeMirror('other', store);
  (c as unknown as { init: { mirrors: unknown[] } }).init.mirrors = [mirror];
  return c;
}
