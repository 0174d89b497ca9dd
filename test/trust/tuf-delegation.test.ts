/**
 * TUF delegations (spec §4.5 and the client's pre-order search, §5.6.7): a team's role signs
 * only the target names its paths cover, with keys the delegating role names; terminating roles
 * end the search; delegated metadata is pinned by snapshot and protected against rollback.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  delegationPathMatches,
  type MemoryRepoStore,
  signMetadata,
  type TargetFile,
  type TargetsSigned,
} from '../../src/trust/index.ts';
import { cloneStore, failure, makeFixture, signerFor } from './tuf-fixture.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function signedOf(store: MemoryRepoStore, path: string): TargetsSigned {
  return (JSON.parse(dec(store.read(path) as Uint8Array)) as { signed: TargetsSigned }).signed;
}

/**
 * Writes a delegated role's metadata as its key holder would (bypassing the repository tool's
 * checks), then has the repository re-sign snapshot and timestamp over it, as an honest
 * snapshot service does for whatever the role holder uploads.
 */
function forge(
  f: ReturnType<typeof makeFixture>,
  role: string,
  signed: TargetsSigned,
  signers: Parameters<typeof signMetadata>[1],
): void {
  f.store.write(`metadata/${role}.json`, signMetadata(signed, signers));
  f.repo.publish(`pad-${signed.version}.bin`, enc('pad'), []);
}

const apps = signerFor('team-apps');
const ml = signerFor('team-ml');

describe('TUF delegations', () => {
  it('a delegated role signs targets under its paths; the client finds them by pre-order search', async () => {
    const f = makeFixture();
    f.repo.delegate('apps', [apps], ['apps/*']);
    f.repo.delegate('ml', [ml], ['models/*.onnx'], { terminating: true });
    f.repo.publish('apps/web.wasm', enc('web v1'), [], { role: 'apps', signers: [apps] });
    f.repo.publish('models/pdm.onnx', enc('model v1'), [], { role: 'ml', signers: [ml] });
    f.repo.publish('firmware.bin', enc('fw'), []);
    await f.server.publishCheckpoint();
    const c = f.client();
    await c.refresh();
    const web = await c.download('apps/web.wasm');
    expect(dec(web.bytes)).toBe('web v1');
    expect(web.role).toBe('apps');
    expect((await c.download('models/pdm.onnx')).role).toBe('ml');
    expect((await c.download('firmware.bin')).role).toBe('targets');
    // Snapshot pins every targets metadata file.
    expect(Object.keys(c.trusted.snapshot?.meta ?? {}).sort()).toEqual([
      'apps.json',
      'ml.json',
      'targets.json',
    ]);
  });

  it('refuses to publish outside a role’s paths, and delegated keys cannot sign top-level targets', async () => {
    const f = makeFixture();
    f.repo.delegate('apps', [apps], ['apps/*']);
    expect(() =>
      f.repo.publish('firmware.bin', enc('x'), [], { role: 'apps', signers: [apps] }),
    ).toThrow(/outside role apps/);
    // `*` does not cross `/`.
    expect(() =>
      f.repo.publish('apps/a/b.wasm', enc('x'), [], { role: 'apps', signers: [apps] }),
    ).toThrow(/outside role apps/);
    // A targets.json signed by the apps key (not the targets key) is refused.
    const evil = cloneStore(f.store);
    const top = signedOf(f.store, 'metadata/targets.json');
    evil.write('metadata/targets.json', signMetadata({ ...top, version: top.version }, [apps]));
    const c = f.client(evil);
    expect((await failure(c.refresh())).code).toMatch(/TRUST_(BAD_SIGNATURE|TARGET_MISMATCH)/);
  });

  it('a role that lists a name outside its paths is never consulted for it', async () => {
    const f = makeFixture();
    f.repo.delegate('apps', [apps], ['apps/*']);
    f.repo.publish('apps/ok.wasm', enc('ok'), [], { role: 'apps', signers: [apps] });
    // The apps team (holding its own key) claims firmware.bin; the repository tool would refuse.
    const a = signedOf(f.store, 'metadata/apps.json');
    forge(
      f,
      'apps',
      {
        ...a,
        version: a.version + 1,
        targets: { ...a.targets, 'firmware.bin': a.targets['apps/ok.wasm'] as TargetFile },
      },
      [apps],
    );
    await f.server.publishCheckpoint();
    const c = f.client();
    await c.refresh();
    expect((await c.download('apps/ok.wasm')).role).toBe('apps');
    expect((await failure(c.download('firmware.bin'))).code).toBe('TRUST_TARGET_MISMATCH');
  });

  it('terminating roles end the search; non-terminating ones let later roles answer', async () => {
    const f = makeFixture();
    const first = signerFor('first');
    const second = signerFor('second');
    f.repo.delegate('first', [first], ['shared/*'], { terminating: true });
    f.repo.delegate('second', [second], ['shared/*']);
    f.repo.publish('shared/x', enc('from second'), [], { role: 'second', signers: [second] });
    await f.server.publishCheckpoint();
    const c = f.client();
    await c.refresh();
    // `first` matches, does not list it, and is terminating: `second` is never consulted.
    expect((await failure(c.download('shared/x'))).code).toBe('TRUST_TARGET_MISMATCH');

    const g = makeFixture();
    g.repo.delegate('first', [first], ['shared/*']);
    g.repo.delegate('second', [second], ['shared/*']);
    g.repo.publish('shared/x', enc('from second'), [], { role: 'second', signers: [second] });
    await g.server.publishCheckpoint();
    const d = g.client();
    await d.refresh();
    const t = await d.download('shared/x');
    expect(t.role).toBe('second');
    expect(dec(t.bytes)).toBe('from second');
  });

  it('nested delegation: targets → apps → apps-edge, signed by each parent’s keys', async () => {
    const f = makeFixture();
    const edge = signerFor('team-edge');
    f.repo.delegate('apps', [apps], ['apps/*']);
    f.repo.delegate('apps-edge', [edge], ['apps/edge-*'], {
      parent: { role: 'apps', signers: [apps] },
    });
    f.repo.publish('apps/edge-cam.wasm', enc('cam'), [], {
      role: 'apps-edge',
      signers: [edge],
    });
    await f.server.publishCheckpoint();
    const c = f.client();
    await c.refresh();
    const t = await c.download('apps/edge-cam.wasm');
    expect(t.role).toBe('apps-edge');
    expect(f.repo.delegatedRoles().map((r) => `${r.parent}→${r.delegation.name}`)).toEqual([
      'targets→apps',
      'apps→apps-edge',
    ]);
  });

  it('a delegated role signed by the wrong key is refused', async () => {
    const f = makeFixture();
    f.repo.delegate('apps', [apps], ['apps/*']);
    f.repo.publish('apps/web.wasm', enc('web v1'), [], { role: 'apps', signers: [apps] });
    const a = signedOf(f.store, 'metadata/apps.json');
    forge(f, 'apps', { ...a, version: a.version + 1 }, [signerFor('mallory')]);
    await f.server.publishCheckpoint();
    const c = f.client();
    await c.refresh();
    expect((await failure(c.download('apps/web.wasm'))).code).toBe('TRUST_BAD_SIGNATURE');
    // Bytes that differ from what snapshot pins are refused before any signature is read.
    const swapped = cloneStore(f.store);
    swapped.write('metadata/apps.json', signMetadata(a, [apps]));
    const d = f.client(swapped);
    await d.refresh();
    expect((await failure(d.download('apps/web.wasm'))).code).toBe('TRUST_TARGET_MISMATCH');
  });

  it('a delegated role rolled back to an older version is refused (snapshot §5.5.5)', async () => {
    const f = makeFixture();
    f.repo.delegate('apps', [apps], ['apps/*']);
    f.repo.publish('apps/web.wasm', enc('web v1'), [], { role: 'apps', signers: [apps] });
    const v1 = f.store.read('metadata/apps.json') as Uint8Array;
    f.repo.publish('apps/web.wasm', enc('web v2'), [], { role: 'apps', signers: [apps] });
    await f.server.publishCheckpoint();
    const c = f.client();
    await c.refresh();
    expect(dec((await c.download('apps/web.wasm')).bytes)).toBe('web v2');
    // A compromised snapshot key re-pins the old apps.json under a newer snapshot.
    f.store.write('metadata/apps.json', v1);
    f.repo.publish('unrelated.bin', enc('x'), []);
    expect((await failure(c.refresh())).code).toBe('TRUST_ROLLBACK');
    expect(dec((await c.download('apps/web.wasm')).bytes)).toBe('web v2');
  });

  it('rejects malformed delegations at the repository (nothing half-written)', () => {
    const f = makeFixture();
    expect(() => f.repo.delegate('targets', [apps], ['x/*'])).toThrow(/delegated role name/);
    expect(() => f.repo.delegate('apps', [apps], [])).toThrow(/paths/);
    expect(() => f.repo.delegate('apps', [apps], ['a/*'], { threshold: 2 })).toThrow(/threshold/);
    expect(f.store.read('metadata/apps.json')).toBeUndefined();
    f.repo.delegate('apps', [apps], ['apps/*']);
    expect(() => f.repo.delegate('apps', [apps], ['apps/*'])).toThrow(/already delegated/);
  });

  it('path patterns: * and ? never match /, everything else is literal', () => {
    expect(delegationPathMatches('apps/*', 'apps/web.wasm')).toBe(true);
    expect(delegationPathMatches('apps/*', 'apps/a/b')).toBe(false);
    expect(delegationPathMatches('apps/*/*', 'apps/a/b')).toBe(true);
    expect(delegationPathMatches('v?.bin', 'v1.bin')).toBe(true);
    expect(delegationPathMatches('v?.bin', 'v1xbin')).toBe(false);
    expect(delegationPathMatches('a+b(c)', 'a+b(c)')).toBe(true);
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[a-z0-9.]{1,6}$/), { minLength: 1, maxLength: 4 }),
        (segments) => {
          const name = segments.join('/');
          // A literal pattern matches only itself; one `*` per segment matches any such name.
          expect(delegationPathMatches(name, name)).toBe(true);
          expect(delegationPathMatches(segments.map(() => '*').join('/'), name)).toBe(true);
          expect(delegationPathMatches(segments.map(() => '*').join('/'), `${name}/x`)).toBe(false);
        },
      ),
    );
  });
});
