/**
 * Durable key-value state of the fabric: membership (per pod) and desired state (per
 * controller). In a real fabric each store is a JetStream KV bucket in the local server's
 * domain — file storage, so an acknowledged `put` survives a server crash and restart, and the
 * island keeps its state while its uplink is down. Tests of the logic use the in-memory store.
 */
import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { FabricError, FabricErrorCode } from './errors.ts';

/** Largest number of keys one `entries` call returns. */
export const KV_ENTRIES_MAX = 1_000_000;
/** Timeout of one JetStream API call. */
export const KV_API_TIMEOUT_MS = 5_000;

/** A small durable map. Puts resolve only once the value is durable. */
export interface KeyValueStore {
  readonly kind: string;
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every live entry, optionally only keys starting with `prefix`. */
  entries(prefix?: string): Promise<[string, Uint8Array][]>;
}

/** In-memory store (unit tests, embedded mode). */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly kind = 'memory';
  private readonly map = new Map<string, Uint8Array>();

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.map.get(key);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.map.set(key, value);
  }

  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }

  async entries(prefix = ''): Promise<[string, Uint8Array][]> {
    return [...this.map].filter(([k]) => k.startsWith(prefix));
  }
}

/** A JetStream KV bucket (file storage, one value of history). */
export class JetStreamKeyValueStore implements KeyValueStore {
  readonly kind = 'jetstream';

  private constructor(private readonly kv: KV) {}

  /**
   * Opens (creating if needed) bucket `bucket` in the JetStream of the connected server, or of
   * `domain` when given.
   * @throws {FabricError} FABRIC_UNREACHABLE when JetStream does not answer.
   */
  static async open(
    nc: NatsConnection,
    bucket: string,
    options: { domain?: string } = {},
  ): Promise<JetStreamKeyValueStore> {
    try {
      const js = jetstream(nc, {
        timeout: KV_API_TIMEOUT_MS,
        ...(options.domain === undefined ? {} : { domain: options.domain }),
      });
      const kv = await new Kvm(js).create(bucket, { history: 1, storage: 'file' } as never);
      return new JetStreamKeyValueStore(kv);
    } catch (e) {
      throw new FabricError(
        FabricErrorCode.Unreachable,
        `cannot open JetStream KV bucket ${bucket}: ${(e as Error).message}`,
        {
          cause: e,
          details: { bucket, domain: options.domain },
        },
      );
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const e = await this.kv.get(key);
    if (e === null || e.operation !== 'PUT') return undefined;
    return e.value;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.kv.put(key, value);
  }

  async delete(key: string): Promise<void> {
    await this.kv.delete(key);
  }

  async entries(prefix = ''): Promise<[string, Uint8Array][]> {
    const out: [string, Uint8Array][] = [];
    // A set: the key lister replays the bucket's subjects, and a key written while the listing
    // runs shows up again (seen on the region directory, which hubs rewrite every period).
    const keys = new Set<string>();
    const it = await this.kv.keys();
    for await (const k of it) {
      if (k.startsWith(prefix)) keys.add(k);
      if (keys.size >= KV_ENTRIES_MAX) break;
    }
    for (const k of keys) {
      const v = await this.get(k);
      if (v !== undefined) out.push([k, v]);
    }
    return out;
  }
}
