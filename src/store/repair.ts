/**
 * The repair scanner. One pass:
 *
 * 1. Membership: pings every tile of the topology; reachable tiles are members, unreachable ones
 *    are marked out (Ceph's "down → out"), so placement moves their slots to healthy tiles.
 * 2. Inventory: lists the shard records of every member, grouping them into stripes.
 * 3. Per stripe: asks each home tile (the placement of the current member set) to verify its
 *    shard's checksum (scrub, which catches bit rot); rebuilds every missing or corrupt shard
 *    from any k healthy ones (a healthy copy left on a former home is simply moved), writes it
 *    to its home, then deletes copies no longer at home.
 *
 * A stripe with fewer than k healthy shards is reported as unrecoverable with its missing
 * indices; nothing is ever rebuilt from fewer than k, and every rebuilt block is checked
 * against its CID before its shards are written.
 */
import { CID } from 'multiformats/cid';
import { verifyBlock } from './cid.ts';
import { PlacementMap, type Profile, resolveProfile, topologyTiles } from './placement.ts';
import { allocFrame } from './protocol.ts';
import type { ShardHeader, ShardRecord } from './shard-store.ts';
import { classify, type DistributedStore, type ShardProblem } from './store.ts';
import { CodecCache, type CodecFactory, reedSolomonCodec, stripeParts } from './stripe.ts';

/**
 * Stripes repaired concurrently. Bounds memory: each holds at most its k + m shards (about
 * (k + m) / k MiB for a 1 MiB chunk, so 16 stripes of 4+2 keep about 24 MiB), and lets the
 * reads, the rebuild and the writes of different stripes overlap (the new homes then group
 * their commits).
 */
export const REPAIR_STRIPES_IN_FLIGHT_MAX = 16;

/** A stripe as the inventory sees it. */
interface StripeInventory {
  readonly block: string;
  readonly k: number;
  readonly m: number;
  readonly blockBytes: number;
  readonly profile: string;
  /** index → tiles holding a copy. */
  readonly holders: Map<number, Set<string>>;
}

/** What one repair pass found and did. */
export interface RepairReport {
  readonly dryRun: boolean;
  readonly members: number;
  /** Tiles newly marked out (unreachable) and back in (reachable again). */
  readonly markedOut: readonly string[];
  readonly markedIn: readonly string[];
  readonly stripesScanned: number;
  readonly stripesHealthy: number;
  /** Shards found missing or corrupt at their home (in a dry run: that would be rebuilt). */
  readonly shardsNeeded: number;
  readonly corruptFound: number;
  readonly shardsRepaired: number;
  readonly bytesRepaired: number;
  readonly orphansRemoved: number;
  readonly unrecoverable: readonly {
    block: string;
    healthy: number;
    k: number;
    missing: number[];
  }[];
  readonly elapsedMs: number;
}

/** Options of {@link repairPass}. */
export interface RepairOptions {
  readonly dryRun?: boolean;
  /**
   * Re-hash every shard at its home (default true): finds bit rot. Without it, a shard counts
   * as healthy when its home lists it, and only stripes touched by a membership change or a
   * lost shard are read: the fast path after a tile dies.
   */
  readonly scrub?: boolean;
  readonly codec?: CodecFactory;
  /** Progress: shards found needing repair and not yet rebuilt. */
  readonly onPending?: (pending: number) => void;
}

/** Runs one repair pass over the whole store. */
export async function repairPass(
  store: DistributedStore,
  options: RepairOptions = {},
): Promise<RepairReport> {
  const t0 = performance.now();
  const dryRun = options.dryRun ?? false;
  const codecs = new CodecCache(options.codec ?? reedSolomonCodec);
  const { members, markedOut, markedIn } = await refreshMembership(store, dryRun);
  const stripes = await inventory(store, members);
  const acc = {
    stripesHealthy: 0,
    shardsNeeded: 0,
    corruptFound: 0,
    shardsRepaired: 0,
    bytesRepaired: 0,
    orphansRemoved: 0,
    pending: 0,
  };
  const unrecoverable: { block: string; healthy: number; k: number; missing: number[] }[] = [];
  const placement = dryRun ? new PlacementMap(store.topology, members) : store.placement();
  const queue = [...stripes.values()];
  const worker = async (): Promise<void> => {
    for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
      const profile = profileOf(store, s);
      const homes = placement.place(s.block, profile);
      const r = await repairStripe(store, codecs, s, homes, dryRun, options.scrub ?? true, (n) => {
        acc.pending += n;
        options.onPending?.(acc.pending);
      });
      acc.shardsNeeded += r.needed.length;
      acc.corruptFound += r.corrupt;
      acc.shardsRepaired += r.repaired;
      acc.bytesRepaired += r.bytes;
      acc.orphansRemoved += r.orphans;
      if (r.needed.length === 0) acc.stripesHealthy++;
      if (r.unrecoverable)
        unrecoverable.push({ block: s.block, healthy: r.healthy, k: s.k, missing: r.needed });
    }
  };
  await Promise.all(Array.from({ length: REPAIR_STRIPES_IN_FLIGHT_MAX }, worker));
  options.onPending?.(0);
  const { pending: _pending, ...counts } = acc;
  return {
    dryRun,
    members: members.length,
    markedOut,
    markedIn,
    stripesScanned: stripes.size,
    ...counts,
    unrecoverable,
    elapsedMs: performance.now() - t0,
  };
}

async function refreshMembership(
  store: DistributedStore,
  dryRun: boolean,
): Promise<{ members: string[]; markedOut: string[]; markedIn: string[] }> {
  const all = topologyTiles(store.topology);
  const up = await Promise.all(
    all.map((t) =>
      store.call(t, { op: 'ping' }).then(
        () => true,
        () => false,
      ),
    ),
  );
  const members = all.filter((_, i) => up[i]);
  const wasOut = new Set(store.catalog.outTiles());
  const nowOut = all.filter((_, i) => !up[i]);
  const markedOut = nowOut.filter((t) => !wasOut.has(t));
  const markedIn = [...wasOut].filter((t) => members.includes(t));
  if (!dryRun && (markedOut.length > 0 || markedIn.length > 0)) store.setOutTiles(nowOut);
  return { members, markedOut, markedIn };
}

async function inventory(
  store: DistributedStore,
  members: readonly string[],
): Promise<Map<string, StripeInventory>> {
  const stripes = new Map<string, StripeInventory>();
  for (const tile of members) {
    let records: ShardRecord[];
    try {
      records = await store.listTile(tile);
    } catch {
      continue;
    }
    for (const r of records) {
      let s = stripes.get(r.block);
      if (s === undefined) {
        s = {
          block: r.block,
          k: r.k,
          m: r.m,
          blockBytes: r.blockBytes,
          profile: r.profile,
          holders: new Map(),
        };
        stripes.set(r.block, s);
      }
      let set = s.holders.get(r.index);
      if (set === undefined) {
        set = new Set();
        s.holders.set(r.index, set);
      }
      set.add(tile);
    }
  }
  return stripes;
}

function profileOf(store: DistributedStore, s: StripeInventory): Profile {
  try {
    const p = store.profile(s.profile);
    if (p.k === s.k && p.m === s.m) return p;
  } catch {
    // An unknown profile name (configuration changed): fall back to the stripe's own shape.
  }
  return resolveProfile(`${s.k}+${s.m}@global`);
}

interface StripeResult {
  needed: number[];
  corrupt: number;
  repaired: number;
  bytes: number;
  orphans: number;
  healthy: number;
  unrecoverable: boolean;
}

async function repairStripe(
  store: DistributedStore,
  codecs: CodecCache,
  s: StripeInventory,
  homes: readonly string[],
  dryRun: boolean,
  scrub: boolean,
  pending: (delta: number) => void,
): Promise<StripeResult> {
  const n = s.k + s.m;
  const health: ('ok' | ShardProblem)[] = scrub
    ? await Promise.all(
        homes.map((tile, index) =>
          store.call(tile, { op: 'check', block: s.block, index }).then(
            (r) => r.health as 'ok' | ShardProblem,
            (e: unknown) => classify(e),
          ),
        ),
      )
    : homes.map((tile, index) => (s.holders.get(index)?.has(tile) === true ? 'ok' : 'missing'));
  const needed = health.flatMap((h, i) => (h === 'ok' ? [] : [i]));
  const corrupt = health.filter((h) => h === 'corrupt').length;
  const out: StripeResult = {
    needed,
    corrupt,
    repaired: 0,
    bytes: 0,
    orphans: 0,
    healthy: n - needed.length,
    unrecoverable: false,
  };
  if (dryRun) {
    out.unrecoverable = needed.length > 0 && !(await canRebuild(store, s, homes, health));
    return out;
  }
  if (needed.length > 0) {
    pending(needed.length);
    try {
      const shards = await gatherShards(store, s, homes, health);
      const have = shards.filter((x) => x !== undefined).length;
      out.healthy = have;
      if (have < s.k) {
        out.unrecoverable = true;
        return out;
      }
      // Each needed shard is rebuilt (or copied) straight into the message that carries it.
      const len = (shards.find((x) => x !== undefined) as Uint8Array).length;
      const frames = new Map(
        needed.map((index) => {
          const header: ShardHeader = {
            block: s.block,
            index,
            k: s.k,
            m: s.m,
            blockBytes: s.blockBytes,
            profile: s.profile,
          };
          const alloc = (bytes: number) => store.framePool.take(bytes);
          return [index, allocFrame({ op: 'put', header }, len, alloc)] as const;
        }),
      );
      const full = needed.some((i) => shards[i] === undefined)
        ? rebuild(codecs, s, shards, needed, (i) => frames.get(i)?.tail)
        : (shards as Uint8Array[]);
      await Promise.all(
        needed.map(async (i) => {
          const { frame, tail } = frames.get(i) as { frame: Uint8Array; tail: Uint8Array };
          const data = full[i] as Uint8Array;
          if (data !== tail) tail.set(data);
          try {
            await store.callFrame<'put'>(homes[i] as string, frame);
            store.framePool.give(frame);
            out.repaired++;
            out.bytes += data.length;
          } catch (e) {
            store.log.warn(
              { block: s.block, index: i, tile: homes[i], err: String(e) },
              'repair write failed',
            );
          }
        }),
      );
    } finally {
      pending(-needed.length);
    }
  }
  if (out.repaired === needed.length) out.orphans = await removeOrphans(store, s, homes);
  return out;
}

/** Collects healthy shards: from homes first, then from copies on former homes. */
async function gatherShards(
  store: DistributedStore,
  s: StripeInventory,
  homes: readonly string[],
  health: readonly string[],
): Promise<(Uint8Array | undefined)[]> {
  const n = s.k + s.m;
  const shards: (Uint8Array | undefined)[] = new Array(n).fill(undefined);
  let have = 0;
  // Fetch k healthy home shards in parallel; fall back one by one if some fail on the way.
  const okIdx = health.flatMap((h, i) => (h === 'ok' ? [i] : []));
  const first = await Promise.all(
    okIdx.slice(0, s.k).map((i) => store.fetchShard(homes[i] as string, s.block, i)),
  );
  first.forEach((f, j) => {
    if (f.ok) {
      shards[okIdx[j] as number] = f.data;
      have++;
    }
  });
  for (const i of okIdx.slice(s.k)) {
    if (have >= s.k) break;
    const f = await store.fetchShard(homes[i] as string, s.block, i);
    if (f.ok) {
      shards[i] = f.data;
      have++;
    }
  }
  // Copies left on tiles that are no longer the home of their slot (after a membership change)
  // are used as-is for their own slot: moving a shard is cheaper than rebuilding it.
  for (let i = 0; i < n; i++) {
    if (shards[i] !== undefined || (have >= s.k && health[i] === 'ok')) continue;
    for (const tile of s.holders.get(i) ?? []) {
      if (tile === homes[i]) continue;
      const f = await store.fetchShard(tile, s.block, i);
      if (f.ok) {
        shards[i] = f.data;
        have++;
        break;
      }
    }
  }
  return shards;
}

async function canRebuild(
  store: DistributedStore,
  s: StripeInventory,
  homes: readonly string[],
  health: readonly string[],
): Promise<boolean> {
  let have = health.filter((h) => h === 'ok').length;
  for (let i = 0; i < s.k + s.m && have < s.k; i++) {
    if (health[i] === 'ok') continue;
    for (const tile of s.holders.get(i) ?? []) {
      if (tile === homes[i]) continue;
      const r = await store
        .call(tile, { op: 'check', block: s.block, index: i })
        .catch(() => undefined);
      if (r?.health === 'ok') {
        have++;
        break;
      }
    }
  }
  return have >= s.k;
}

/**
 * Rebuilds the needed shards of a stripe and checks the block against its CID before anything
 * is written: a shard that passed its own checksum but was written wrong must never spread.
 * No re-encode is needed: if the block the decoder produced hashes to the CID, the k shards it
 * decoded from are the true ones (an MDS code maps the block one-to-one onto any k shards), so
 * every shard it rebuilt from them is right as well.
 */
function rebuild(
  codecs: CodecCache,
  s: StripeInventory,
  shards: (Uint8Array | undefined)[],
  needed: readonly number[],
  target: (index: number) => Uint8Array | undefined,
): (Uint8Array | undefined)[] {
  const codec = codecs.get(s.k, s.m);
  // Rebuild the needed shards from the others when they suffice, rather than trusting a copy
  // fetched for one of them.
  const others = shards.map((x, i) => (needed.includes(i) ? undefined : x));
  const fromOthers = others.filter((x) => x !== undefined).length >= s.k;
  const input = fromOthers ? others : shards;
  const len = (input.find((x) => x !== undefined) as Uint8Array).length;
  // Only what is written or checked: the needed shards and any missing data shard (the CID
  // check reads every data shard); a missing parity shard nobody needs is not computed.
  const wanted = input.flatMap((x, i) =>
    x === undefined && (i < s.k || needed.includes(i)) ? [i] : [],
  );
  const buffers = wanted.map((i) => target(i) ?? Buffer.allocUnsafe(len));
  const full: (Uint8Array | undefined)[] =
    codec.reconstructSomeInto !== undefined
      ? codec.reconstructSomeInto(input, wanted, buffers)
      : codec.reconstruct(input);
  const data = full.slice(0, s.k) as Uint8Array[];
  verifyBlock(CID.parse(s.block), stripeParts(data, s.k, s.blockBytes));
  if (!fromOthers) {
    // The decoder reads the first k present shards, so every data shard is decoded or was
    // used (and is covered by the CID check), but a parity copy it did not read is not:
    // recompute the parity from the verified data.
    const parity = codec.encode(data);
    for (let j = 0; j < s.m; j++) full[s.k + j] = parity[j] as Uint8Array;
  }
  return full;
}

async function removeOrphans(
  store: DistributedStore,
  s: StripeInventory,
  homes: readonly string[],
): Promise<number> {
  let removed = 0;
  for (const [index, tiles] of s.holders) {
    for (const tile of tiles) {
      if (tile === homes[index]) continue;
      const r = await store
        .call(tile, { op: 'delete', block: s.block, index })
        .catch(() => undefined);
      if (r?.existed === true) removed++;
    }
  }
  return removed;
}
