/**
 * The region directory: one JetStream KV bucket per region (`genesis-region`, in the region's
 * own domain, served by the region store on a gateway region — see nats-config.ts), where
 * every hub of the region keeps a record of its pods and their room. Hubs read their
 * siblings' records to redirect a tile when no pod of their own has room (a tile whose hub is
 * full lands in a sibling hub of the same region), and the region process lists the hubs.
 *
 * Records are plain JSON validated with zod on read; like assign/inventory replies they rely
 * on NATS account permissions, not signatures (docs/fabric.md, Known limits). Freshness is
 * judged on the reader's own clock (when a record last changed in its view), so clock skew
 * between hub machines does not matter.
 */
import { z } from 'zod';
import type { Clock, Logger, TimerHandle } from '../core/index.ts';
import { POD_TILES_MAX } from './limits.ts';
import type { KeyValueStore } from './state-store.ts';
import { decodeJson, encodeJson } from './wire.ts';

/** KV bucket of a region's directory, in the region's JetStream domain. */
export const REGION_BUCKET = 'genesis-region';
/** Largest number of hub records one directory read takes. */
export const REGION_HUBS_MAX = 1_024;
/** Largest number of pods one hub record lists. */
export const REGION_HUB_PODS_MAX = 1_024;
/** A sibling's record counts for redirects while it changed within this many publish periods. */
export const REGION_RECORD_FRESH_PERIODS = 3;
/**
 * A directory tick (one write, one listing, the reads) still running after this many ms is
 * abandoned and counted as a failure, and the bucket is reopened on the next tick: a JetStream
 * call that hangs after the region store restarts must not stop the hub's publishing for good.
 */
export const REGION_TICK_TIMEOUT_MS = 6_000;

const name = z.string().regex(/^[a-z0-9][a-z0-9.-]{0,127}$/);

/** A hub's record in its region's directory. */
export const hubRecordSchema = z.strictObject({
  hub: name,
  /** Publisher's clock; only used to see that the record changes. */
  atMs: z.number(),
  pods: z
    .array(
      z.strictObject({
        pod: name,
        url: z.string().max(256),
        tiles: z.number().int().min(0).max(POD_TILES_MAX),
        tilesMax: z.number().int().min(0).max(POD_TILES_MAX),
      }),
    )
    .max(REGION_HUB_PODS_MAX),
});
/** A hub's record. */
export type HubRecord = z.infer<typeof hubRecordSchema>;

/** Key of a hub's record. */
export function hubRecordKey(hub: string): string {
  return `hub.${hub}`;
}

/** Options of a {@link RegionDirectory}. */
export interface RegionDirectoryInit {
  /** The hub this directory speaks for. */
  readonly hub: string;
  /** Opens the region's bucket (retried on every tick until it succeeds). */
  readonly open: () => Promise<KeyValueStore>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Publish/read period (the hub's renew period). */
  readonly periodMs: number;
}

interface SeenRecord {
  record: HubRecord;
  changedMs: number;
}

/** One hub's view of its region's directory. */
export class RegionDirectory {
  private store: KeyValueStore | undefined;
  private readonly seen = new Map<string, SeenRecord>();
  readonly counters = { published: 0, reads: 0, failures: 0, malformed: 0 };

  constructor(private readonly init: RegionDirectoryInit) {}

  /** True once the region's bucket answered. */
  get connected(): boolean {
    return this.store !== undefined;
  }

  /**
   * Writes this hub's record, then reads every sibling's. Never throws (counted); resolves within
   * {@link REGION_TICK_TIMEOUT_MS} even when a JetStream call hangs.
   */
  async tick(pods: HubRecord['pods']): Promise<void> {
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = this.init.clock.setTimeout(() => resolve('timeout'), REGION_TICK_TIMEOUT_MS);
    });
    try {
      if ((await Promise.race([this.publishAndRead(pods), timedOut])) === 'timeout') {
        this.store = undefined;
        this.counters.failures++;
        this.init.logger.debug(
          { timeoutMs: REGION_TICK_TIMEOUT_MS },
          'region directory tick timed out',
        );
      }
    } finally {
      if (timer !== undefined) this.init.clock.clearTimer(timer);
    }
  }

  private async publishAndRead(pods: HubRecord['pods']): Promise<void> {
    try {
      this.store ??= await this.init.open();
      const record: HubRecord = {
        hub: this.init.hub,
        atMs: this.init.clock.now(),
        pods: pods.slice(0, REGION_HUB_PODS_MAX),
      };
      await this.store.put(hubRecordKey(this.init.hub), encodeJson(record));
      this.counters.published++;
      await this.refresh();
    } catch (e) {
      this.counters.failures++;
      this.init.logger.debug({ err: String(e) }, 'region directory unavailable');
    }
  }

  /** Re-reads every record of the region. */
  async refresh(): Promise<void> {
    if (this.store === undefined) return;
    const now = this.init.clock.now();
    const entries = (await this.store.entries('hub.')).slice(0, REGION_HUBS_MAX);
    this.counters.reads++;
    for (const [key, value] of entries) {
      const r = decodeJson(value, hubRecordSchema);
      if (r === undefined || hubRecordKey(r.hub) !== key) {
        this.counters.malformed++;
        continue;
      }
      const prev = this.seen.get(r.hub);
      if (prev === undefined || prev.record.atMs !== r.atMs)
        this.seen.set(r.hub, { record: r, changedMs: now });
    }
  }

  /** Every record read so far, with whether it is fresh. */
  hubs(): { record: HubRecord; fresh: boolean }[] {
    const now = this.init.clock.now();
    return [...this.seen.values()].map((s) => ({ record: s.record, fresh: this.isFresh(s, now) }));
  }

  /**
   * The least-loaded pod with room under a fresh sibling hub (not this one), skipping
   * `exclude`; undefined when there is none.
   */
  siblingPod(exclude: ReadonlySet<string>): { pod: string; url: string } | undefined {
    const now = this.init.clock.now();
    let best: HubRecord['pods'][number] | undefined;
    for (const s of this.seen.values()) {
      if (s.record.hub === this.init.hub || !this.isFresh(s, now)) continue;
      for (const p of s.record.pods) {
        if (exclude.has(p.pod) || p.tiles >= p.tilesMax || p.url === '') continue;
        if (best === undefined || p.tiles / p.tilesMax < best.tiles / best.tilesMax) best = p;
      }
    }
    return best === undefined ? undefined : { pod: best.pod, url: best.url };
  }

  private isFresh(s: SeenRecord, now: number): boolean {
    return now - s.changedMs <= REGION_RECORD_FRESH_PERIODS * this.init.periodMs;
  }
}
