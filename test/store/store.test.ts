import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Transport } from '../../src/core/index.ts';
import {
  CHUNK_BYTES,
  isStoreError,
  type MemoryShardStore,
  parseCid,
  rawCid,
  type ShardStore,
  serveShardStore,
} from '../../src/store/index.ts';
import { bytesOf, startCluster, type TestCluster } from './support/fabric.ts';

let c: TestCluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

async function homesOf(t: TestCluster, cid: string): Promise<string[]> {
  const st = await t.cluster.store.stat(cid);
  return (st.stripes[0]?.shards ?? []).map((s) => s.tile);
}

describe('distributed store over the in-process transport', () => {
  it('puts and gets a small object under its raw CID', async () => {
    c = await startCluster();
    const r = await c.cluster.store.put(new TextEncoder().encode('hello world'));
    expect(r.cid).toBe('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e');
    expect(new TextDecoder().decode(await c.cluster.store.getBytes(r.cid))).toBe('hello world');
    const st = await c.cluster.store.stat(r.cid);
    expect(st).toMatchObject({
      kind: 'raw',
      size: 11,
      profile: 'pod-4+2',
      pinned: true,
      degraded: 0,
    });
    expect(new Set(st.stripes[0]?.shards.map((s) => s.tile)).size).toBe(6);
  });

  it('streams a multi-chunk object in odd-sized pieces under a dag-cbor manifest, bit-exact', async () => {
    c = await startCluster();
    const data = bytesOf(3 * CHUNK_BYTES + 12345, 1);
    async function* pieces() {
      for (let off = 0; off < data.length; off += 77_777)
        yield data.subarray(off, Math.min(data.length, off + 77_777));
    }
    const r = await c.cluster.store.put(pieces(), { profile: 'hub-10+4' });
    expect(r.blocks).toBe(5);
    expect(parseCid(r.cid).code).toBe(0x71);
    // Same bytes, one piece: same CID (content addressing does not depend on how bytes arrive).
    expect((await c.cluster.store.put(data, { profile: 'hub-10+4' })).cid).toBe(r.cid);
    const back = await c.cluster.store.getBytes(r.cid);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
    const st = await c.cluster.store.stat(r.cid);
    expect(st).toMatchObject({ kind: 'manifest', size: data.length, profile: 'hub-10+4' });
    expect(st.stripes).toHaveLength(5);
  });

  it('reads with up to m tiles of a stripe dead; with more, fails naming the object and missing shards', async () => {
    c = await startCluster();
    const data = bytesOf(200_000, 2);
    const { cid } = await c.cluster.store.put(data);
    const homes = await homesOf(c, cid);
    await c.kill(homes[0] as string);
    await c.kill(homes[4] as string);
    expect(
      Buffer.compare(Buffer.from(await c.cluster.store.getBytes(cid)), Buffer.from(data)),
    ).toBe(0);
    await c.kill(homes[1] as string);
    const err = await c.cluster.store.getBytes(cid).catch((e: unknown) => e);
    expect(isStoreError(err, 'STORE_UNAVAILABLE')).toBe(true);
    const details = (
      err as { details: { object: string; missing: { index: number; tile: string }[] } }
    ).details;
    expect(details.object).toBe(cid);
    expect(details.missing.map((x) => x.index).sort()).toEqual([0, 1, 4]);
    expect(details.missing.map((x) => x.tile)).toContain(homes[1]);
  });

  it('heals a rotted shard at read time and never returns wrong bytes', async () => {
    c = await startCluster();
    const data = bytesOf(50_000, 3);
    const { cid } = await c.cluster.store.put(data);
    const homes = await homesOf(c, cid);
    c.memStore(homes[2] as string).rot(cid, 2, 100);
    expect(
      Buffer.compare(Buffer.from(await c.cluster.store.getBytes(cid)), Buffer.from(data)),
    ).toBe(0);
    expect(c.cluster.store.stats.reconstructions).toBe(1);
    expect(c.cluster.store.stats.shardsHealed).toBe(1);
    expect(c.memStore(homes[2] as string).check(cid, 2)).toBe('ok');
    expect(c.memStore(homes[2] as string).stats().corruptDetected).toBe(1);
  });

  it("the repair scanner rebuilds a dead tile's shards elsewhere and scrubs bit rot", async () => {
    c = await startCluster();
    const objs = [];
    for (let i = 0; i < 12; i++) objs.push({ data: bytesOf(10_000 + i * 40_000, 10 + i), cid: '' });
    for (const o of objs) o.cid = (await c.cluster.store.put(o.data)).cid;
    const victim = (await homesOf(c, objs[0]?.cid as string))[0] as string;
    const victimShards = c.memStore(victim).stats().shards;
    await c.kill(victim);
    // Rot one shard on a live tile too; only the scrub will see it.
    const other = (await homesOf(c, objs[1]?.cid as string)).find((t) => t !== victim) as string;
    const idx = (await homesOf(c, objs[1]?.cid as string)).indexOf(other);
    c.memStore(other).rot(objs[1]?.cid as string, idx);

    const dry = await c.cluster.repair({ dryRun: true });
    expect(dry.markedOut).toEqual([victim]);
    expect(dry.shardsRepaired).toBe(0);
    // The dead tile's shards, the rotted one, and a few knock-on moves of placement.
    expect(dry.shardsNeeded).toBeGreaterThanOrEqual(victimShards + 1);
    // The scrub quarantines the rotted shard even in a dry run (it would never be served).
    expect(dry.corruptFound).toBe(1);

    const rep = await c.cluster.repair();
    expect(rep.markedOut).toEqual([victim]);
    expect(rep.shardsNeeded).toBe(dry.shardsNeeded);
    expect(rep.shardsRepaired).toBe(rep.shardsNeeded);
    // Knock-on moves are copied from the former home, which then drops its copy.
    expect(rep.orphansRemoved).toBe(rep.shardsNeeded - victimShards - 1);
    let live = 0;
    for (const [name, t] of c.cluster.tiles) if (name !== victim) live += t.status().shards ?? 0;
    expect(live).toBe(rep.stripesScanned * 6);
    expect(rep.unrecoverable).toEqual([]);
    const again = await c.cluster.repair();
    expect(again.shardsNeeded).toBe(0);
    expect(again.stripesHealthy).toBe(again.stripesScanned);
    // After repair every object survives two more failures among its new homes.
    for (const o of objs) {
      const homes = await homesOf(c, o.cid);
      expect(homes).not.toContain(victim);
    }
    const homes = await homesOf(c, objs[5]?.cid as string);
    await c.kill(homes[0] as string);
    await c.kill(homes[5] as string);
    expect(
      Buffer.compare(
        Buffer.from(await c.cluster.store.getBytes(objs[5]?.cid as string)),
        Buffer.from(objs[5]?.data as Uint8Array),
      ),
    ).toBe(0);
  });

  it('GC removes only blocks no pin reaches; pins that cannot be honoured fail loudly', async () => {
    c = await startCluster();
    const s = c.cluster.store;
    const kept = await s.put(bytesOf(2 * CHUNK_BYTES + 1, 20));
    const dropped = await s.put(bytesOf(CHUNK_BYTES + 7, 21), { pin: false });
    const g = await s.gc();
    expect(g.blocksRemoved).toBe(3);
    expect(g.shardsRemoved).toBe(18);
    expect((await s.getBytes(kept.cid)).length).toBe(2 * CHUNK_BYTES + 1);
    await expect(s.getBytes(dropped.cid)).rejects.toMatchObject({ code: 'STORE_NOT_FOUND' });
    await expect(s.pin(dropped.cid)).rejects.toMatchObject({ code: 'STORE_PIN_UNAVAILABLE' });
    await expect(s.pin(rawCid(new Uint8Array([1, 2, 3])).toString())).rejects.toMatchObject({
      code: 'STORE_PIN_UNAVAILABLE',
    });
    expect(s.unpin(kept.cid)).toBe(true);
    expect((await s.gc()).blocksRemoved).toBe(4);
    const tiles = [...c.cluster.tiles.values()].reduce((a, t) => a + (t.status().shards ?? 0), 0);
    expect(tiles).toBe(0);
  });

  it('property: any object reads bit-exact with any m tiles of its stripes dead', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: CHUNK_BYTES + 5000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.constantFrom('pod-4+2', 'hub-10+4', '3+3@global'),
        async (len, seed, profile) => {
          const t = await startCluster();
          try {
            const data = bytesOf(len, seed);
            const { cid } = await t.cluster.store.put(data, { profile });
            const p = t.cluster.store.profile(profile);
            const homes = await homesOf(t, cid);
            const rng = seed;
            for (let i = 0; i < p.m; i++)
              await t.kill(homes[(rng + i * 7) % homes.length] as string).catch(() => undefined);
            const back = await t.cluster.store.getBytes(cid);
            expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0);
          } finally {
            await t.stop();
          }
        },
      ),
      { numRuns: 12, seed: 5 },
    );
  });
});

describe('quick repair (no scrub)', () => {
  it("rebuilds a dead tile's shards without re-hashing healthy stripes", async () => {
    c = await startCluster();
    const objs: { data: Uint8Array; cid: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const data = bytesOf(30_000 + i * 9_000, 40 + i);
      objs.push({ data, cid: (await c.cluster.store.put(data)).cid });
    }
    const victim = (await homesOf(c, objs[0]?.cid as string))[3] as string;
    const lost = c.memStore(victim).stats().shards;
    await c.kill(victim);
    const r = await c.cluster.repair({ scrub: false });
    expect(r.markedOut).toEqual([victim]);
    expect(r.shardsRepaired).toBe(r.shardsNeeded);
    expect(r.shardsNeeded).toBeGreaterThanOrEqual(lost);
    expect(r.corruptFound).toBe(0);
    const full = await c.cluster.repair();
    expect(full.shardsNeeded).toBe(0);
    for (const o of objs)
      expect(
        Buffer.compare(Buffer.from(await c.cluster.store.getBytes(o.cid)), Buffer.from(o.data)),
      ).toBe(0);
  });
});

describe('adversarial tiles', () => {
  it('a shard that passes its tile checksum but is wrong is found and replaced; two liars fail typed, never wrong bytes', async () => {
    c = await startCluster();
    const data = bytesOf(300_000, 99);
    const { cid } = await c.cluster.store.put(data);
    const homes = await homesOf(c, cid);
    const lie = async (tile: string) => {
      const honest = c?.memStore(tile) as MemoryShardStore;
      await c?.kill(tile);
      const liar: ShardStore = Object.assign(Object.create(honest) as ShardStore, {
        get(block: string, index: number) {
          const r = honest.get(block, index);
          const d = Uint8Array.from(r.data);
          d[7] = (d[7] ?? 0) ^ 0xff;
          return { record: r.record, data: d };
        },
      });
      serveShardStore(c?.fabric.transport as Transport, tile, liar);
    };
    await lie(homes[1] as string);
    expect(
      Buffer.compare(Buffer.from(await c.cluster.store.getBytes(cid)), Buffer.from(data)),
    ).toBe(0);
    await lie(homes[2] as string);
    await expect(c.cluster.store.getBytes(cid)).rejects.toMatchObject({
      code: 'STORE_CID_MISMATCH',
    });
  });
});
