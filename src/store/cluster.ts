/**
 * Wiring the store into an {@link EmbeddedFabric}: every tile runs a {@link BlockstoreService},
 * and one {@link DistributedStore} client (the coordinator, on the global node's data dir)
 * reads and writes through the fabric's transport and runs the background repair scanner.
 * `genesis up` and the `genesis store` CLI both use it.
 */
import { join } from 'node:path';
import type { Clock, EmbeddedFabric, TimerHandle } from '../core/index.ts';
import { MemoryCatalog, SqliteCatalog, type StoreCatalog } from './catalog.ts';
import type { Profile } from './placement.ts';
import { type RepairReport, repairPass } from './repair.ts';
import { DistributedStore } from './store.ts';
import type { CodecFactory } from './stripe.ts';
import { BlockstoreService } from './tile-service.ts';

/** Options of {@link attachStore}. */
export interface StoreClusterOptions {
  /** fsync every shard write (default true). */
  readonly durable?: boolean;
  readonly profiles?: readonly Profile[];
  readonly defaultProfile?: string;
  readonly codec?: CodecFactory;
  readonly requestTimeoutMs?: number;
}

/** Status counters shown by `genesis up`. */
export interface StoreClusterStatus {
  readonly objects: number;
  readonly bytes: number;
  readonly shards: number;
  readonly shardBytes: number;
  readonly underRepair: number;
  readonly repairs: number;
}

/** The store of one embedded fabric. */
export class StoreCluster {
  readonly store: DistributedStore;
  readonly tiles = new Map<string, BlockstoreService>();
  private timer: TimerHandle | undefined;
  private running: Promise<RepairReport> | undefined;
  private underRepair = 0;
  private repairs = 0;
  /** The last background repair report. */
  lastReport: RepairReport | undefined;

  constructor(
    readonly fabric: EmbeddedFabric,
    options: StoreClusterOptions = {},
  ) {
    for (const node of fabric.nodesAt('tile')) {
      const svc = new BlockstoreService({ durable: options.durable ?? true });
      node.attach(svc);
      this.tiles.set(node.name, svc);
    }
    const catalog: StoreCatalog =
      fabric.dataDir === undefined
        ? new MemoryCatalog()
        : new SqliteCatalog(join(fabric.dataDir, 'nodes', 'global', 'store', 'catalog.sqlite'));
    this.store = new DistributedStore({
      transport: fabric.transport,
      topology: fabric.topology,
      logger: fabric.logger,
      catalog,
      ...(options.profiles === undefined ? {} : { profiles: options.profiles }),
      ...(options.defaultProfile === undefined ? {} : { defaultProfile: options.defaultProfile }),
      ...(options.codec === undefined ? {} : { codec: options.codec }),
      ...(options.requestTimeoutMs === undefined
        ? {}
        : { requestTimeoutMs: options.requestTimeoutMs }),
    });
  }

  /** Runs one repair pass (never two at once). */
  repair(options: { dryRun?: boolean; scrub?: boolean } = {}): Promise<RepairReport> {
    this.running ??= repairPass(this.store, {
      ...options,
      onPending: (n) => {
        this.underRepair = n;
      },
    })
      .then((r) => {
        this.repairs++;
        this.lastReport = r;
        return r;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** Starts the background scanner: one pass every `intervalMs` on `clock`. */
  startScanner(clock: Clock, intervalMs: number): void {
    this.stopScanner();
    this.timer = clock.setInterval(() => {
      this.repair().catch((e: unknown) =>
        this.fabric.logger.warn({ err: String(e) }, 'repair pass failed'),
      );
    }, intervalMs);
  }

  /** Stops the scanner and waits for a running pass. */
  async stopScanner(): Promise<void> {
    if (this.timer !== undefined) this.fabric.clock.clearTimer(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Counters for status lines. */
  status(): StoreClusterStatus {
    let shards = 0;
    let shardBytes = 0;
    for (const t of this.tiles.values()) {
      const s = t.status();
      shards += s.shards ?? 0;
      shardBytes += s.bytes ?? 0;
    }
    const pins = this.store.catalog.pins();
    return {
      objects: pins.length,
      bytes: pins.reduce((a, p) => a + p.size, 0),
      shards,
      shardBytes,
      underRepair: this.underRepair,
      repairs: this.repairs,
    };
  }

  /** Stops the scanner and closes the catalog (tile services stop with their nodes). */
  async close(): Promise<void> {
    await this.stopScanner();
    this.store.catalog.close();
  }
}

/** Attaches the store to every tile of `fabric` (call before `fabric.start()`). */
export function attachStore(
  fabric: EmbeddedFabric,
  options: StoreClusterOptions = {},
): StoreCluster {
  return new StoreCluster(fabric, options);
}
