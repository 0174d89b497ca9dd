import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { InprocTransport } from '../../src/core/index.ts';
import { CRDT_SYNC_ROUNDS_MAX, CrdtReplica, CrdtSyncEndpoint } from '../../src/store/index.ts';
import { startCluster, type TestCluster } from './support/fabric.ts';

type Doc = { kv: Record<string, number>; log: string[] };
const NAMES = ['a', 'b', 'c'] as const;

function threeReplicas(): CrdtReplica<Doc>[] {
  const seed = CrdtReplica.create<Doc>({ kv: {}, log: [] }, { actor: 'aa00' });
  const bytes = seed.save();
  return NAMES.map((_, i) => CrdtReplica.fromBytes<Doc>(bytes, { actor: `0${i}`.padEnd(4, 'f') }));
}

/** Runs the sync protocol reliably between every pair until nobody has anything to send. */
function settle(reps: CrdtReplica<Doc>[]): void {
  for (let round = 0; round < CRDT_SYNC_ROUNDS_MAX; round++) {
    let sent = 0;
    reps.forEach((r, i) => {
      reps.forEach((p, j) => {
        if (i === j) return;
        const m = r.generateSyncMessage(NAMES[j] as string);
        if (m === null) return;
        sent++;
        p.receiveSyncMessage(NAMES[i] as string, m);
      });
    });
    if (sent === 0) return;
  }
  throw new Error('sync did not settle');
}

const dirs: string[] = [];
let cl: TestCluster | undefined;
afterEach(async () => {
  await cl?.stop();
  cl = undefined;
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('CRDT documents', () => {
  it('property: concurrent edits on three replicas with random loss and reordering converge', () => {
    const op = fc.oneof(
      fc.record({
        t: fc.constant('edit' as const),
        r: fc.nat(2),
        key: fc.constantFrom('x', 'y', 'z', 'w'),
        v: fc.integer(),
      }),
      fc.record({ t: fc.constant('push' as const), r: fc.nat(2), s: fc.string({ maxLength: 4 }) }),
      fc.record({ t: fc.constant('send' as const), r: fc.nat(2), p: fc.nat(2) }),
      fc.record({ t: fc.constant('deliver' as const), pick: fc.nat(), drop: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const reps = threeReplicas();
        const net: { from: number; to: number; bytes: Uint8Array }[] = [];
        for (const o of ops) {
          if (o.t === 'edit')
            reps[o.r]?.change((d) => {
              d.kv[o.key] = o.v;
            });
          else if (o.t === 'push')
            reps[o.r]?.change((d) => {
              d.log.push(o.s);
            });
          else if (o.t === 'send' && o.r !== o.p) {
            const m = reps[o.r]?.generateSyncMessage(NAMES[o.p] as string);
            if (m) net.push({ from: o.r, to: o.p, bytes: m });
          } else if (o.t === 'deliver' && net.length > 0) {
            // Any queued message, not the oldest: reordering; `drop` loses it.
            const [msg] = net.splice(o.pick % net.length, 1);
            if (msg !== undefined && !o.drop)
              reps[msg.to]?.receiveSyncMessage(NAMES[msg.from] as string, msg.bytes);
          }
        }
        // The link comes back: forget in-flight state (lost messages never arrive), then sync.
        for (const r of reps) for (const n of NAMES) r.resetPeer(n);
        settle(reps);
        const [a, b, c] = reps as [CrdtReplica<Doc>, CrdtReplica<Doc>, CrdtReplica<Doc>];
        expect(b.heads().sort()).toEqual(a.heads().sort());
        expect(c.heads().sort()).toEqual(a.heads().sort());
        expect(b.toJSON()).toEqual(a.toJSON());
        expect(c.toJSON()).toEqual(a.toJSON());
        // Nothing was lost for good: every local edit is in the merged log.
        const pushes = ops.filter((o) => o.t === 'push').length;
        expect(a.toJSON().log.length).toBe(pushes);
      }),
      { numRuns: 15, seed: 11 },
    );
  });

  it('syncs three replicas over the transport with CrdtSyncEndpoint', async () => {
    const t = new InprocTransport();
    const reps = threeReplicas();
    const eps = reps.map(
      (r, i) =>
        new CrdtSyncEndpoint(
          t,
          'twin-1',
          NAMES[i] as string,
          r,
          NAMES.filter((_, j) => j !== i),
        ),
    );
    reps[0]?.change((d) => {
      d.kv.temp = 21;
    });
    reps[1]?.change((d) => {
      d.log.push('b was here');
    });
    reps[2]?.change((d) => {
      d.kv.hum = 40;
    });
    for (const e of eps) e.syncAll();
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    await t.flush();
    for (const r of reps)
      expect(r.toJSON()).toEqual({ kv: { temp: 21, hum: 40 }, log: ['b was here'] });
    for (const e of eps) e.close();
    // Garbage and strangers are counted, not applied.
    const ep = new CrdtSyncEndpoint(t, 'twin-1', 'a', reps[0] as CrdtReplica<Doc>, ['b']);
    t.publish('genesis.crdt.twin-1.a', new Uint8Array([1, 2, 3]), { headers: { from: 'b' } });
    t.publish('genesis.crdt.twin-1.a', new Uint8Array([1, 2, 3]), { headers: { from: 'mallory' } });
    await t.flush();
    expect(ep.rejected).toBe(2);
    ep.close();
    await t.close();
  });

  it('persists atomically and snapshots into the store by CID', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'genesis-crdt-'));
    dirs.push(dir);
    const path = join(dir, 'twin.automerge');
    const r = CrdtReplica.open<Doc>(path, { kv: {}, log: [] });
    r.change((d) => {
      d.kv.a = 1;
    });
    r.persist();
    const again = CrdtReplica.open<Doc>(path, { kv: {}, log: [] });
    expect(again.toJSON()).toEqual({ kv: { a: 1 }, log: [] });
    cl = await startCluster();
    const cid = await again.snapshot(cl.cluster.store);
    expect(cid).toMatch(/^bafk/);
    const back = await CrdtReplica.fromSnapshot<Doc>(cl.cluster.store, cid);
    expect(back.heads()).toEqual(again.heads());
    expect(() => CrdtReplica.fromBytes(new Uint8Array([9, 9, 9]))).toThrow(
      expect.objectContaining({ code: 'STORE_CRDT_INVALID' }),
    );
  });
});
