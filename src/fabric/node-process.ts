/**
 * One real fabric node process (`genesis node --role tile|pod|hub|region --nats URL`). The
 * only required configuration is the URL of the nearest nats-server: the node learns where it
 * is from the server's name (`server_name` is the pod/hub/region name), keeps a persistent
 * Ed25519 identity in its data dir (the trust layer's key generation), and keeps durable state
 * in the JetStream domain of the server it is attached to.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  type Clock,
  CryptoRng,
  type Logger,
  type MembershipEvent,
  type Rng,
  SystemClock,
} from '../core/index.ts';
import { Controller } from './controller.ts';
import { FabricError, FabricErrorCode } from './errors.ts';
import { HubAgent } from './hub-agent.ts';
import { DirModuleSource, KernelRunner } from './kernel-runner.ts';
import type { Capacity, LeaseConfig } from './messages.ts';
import { Subjects } from './messages.ts';
import { jetstreamDomain } from './nats-config.ts';
import { NatsTransport } from './nats-transport.ts';
import { leaseConfig, PodAgent } from './pod-agent.ts';
import {
  hubRecordKey,
  hubRecordSchema,
  REGION_BUCKET,
  REGION_HUBS_MAX,
  RegionDirectory,
} from './region-directory.ts';
import { JetStreamKeyValueStore, type KeyValueStore, MemoryKeyValueStore } from './state-store.ts';
import { TileAgent } from './tile-agent.ts';
import { decodeJson, generateKeyPair, type KeyPair } from './wire.ts';

/** Roles a node process can take. */
export const NODE_ROLES = ['tile', 'pod', 'hub', 'region'] as const;
/** A node role. */
export type NodeRole = (typeof NODE_ROLES)[number];

/** KV bucket holding a pod's membership (in the pod's JetStream domain). */
export const MEMBERS_BUCKET = 'genesis-members';
/** KV bucket holding a hub controller's desired state (in the hub's JetStream domain). */
export const DESIRED_BUCKET = 'genesis-desired';

/** Options of {@link startFabricNode}. */
export interface FabricNodeOptions {
  readonly role: NodeRole;
  readonly nats: string;
  /** Name (pod/hub/region: defaults to the server's name; tile: a wish, the pod decides). */
  readonly name?: string;
  readonly dataDir?: string;
  /** Tile: run placements as kernel domains, resolving modules by CID in these directories
   * (without it, placements are recorded only). */
  readonly moduleDirs?: readonly string[];
  readonly lease?: Partial<LeaseConfig>;
  readonly capacity?: Partial<Capacity>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly tilesMax?: number;
  readonly reconcileMs?: number;
  readonly unreachableGraceMs?: number;
  /** Use in-memory state instead of JetStream (no durability; for servers without JetStream). */
  readonly memoryState?: boolean;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly rng?: Rng;
}

/** A running node process's handle. */
export interface FabricNodeHandle {
  readonly role: NodeRole;
  readonly name: string;
  readonly transport: NatsTransport;
  status(): Record<string, number | string>;
  stop(): Promise<void>;
}

const identitySchema = z.strictObject({ publicKey: z.string(), secretKey: z.string() });

/**
 * Loads this node's Ed25519 identity from `<dataDir>/identity.json`, creating it (mode 0600)
 * on first start. Without a data dir the identity is ephemeral.
 */
export function loadOrCreateIdentity(dataDir: string | undefined): KeyPair {
  if (dataDir === undefined) return generateKeyPair();
  const path = join(dataDir, 'identity.json');
  if (existsSync(path)) {
    const r = identitySchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!r.success)
      throw new FabricError(FabricErrorCode.ConfigInvalid, `${path} is not a valid identity file`);
    return {
      publicKey: Buffer.from(r.data.publicKey, 'base64'),
      secretKey: Buffer.from(r.data.secretKey, 'base64'),
    };
  }
  mkdirSync(dataDir, { recursive: true });
  const keys = generateKeyPair();
  writeFileSync(
    path,
    JSON.stringify({
      publicKey: Buffer.from(keys.publicKey).toString('base64'),
      secretKey: Buffer.from(keys.secretKey).toString('base64'),
    }),
    { mode: 0o600 },
  );
  chmodSync(path, 0o600);
  return keys;
}

/** Level implied by a hierarchical name: 1 token region, 2 hub, 3 pod, 4 tile. */
export function levelOfName(name: string): NodeRole | undefined {
  const n = name.split('.').length;
  return n === 1 ? 'region' : n === 2 ? 'hub' : n === 3 ? 'pod' : n === 4 ? 'tile' : undefined;
}

/** Parent of a hierarchical name (undefined for a region). */
export function parentOfName(name: string): string | undefined {
  const i = name.lastIndexOf('.');
  return i < 0 ? undefined : name.slice(0, i);
}

async function openStore(
  t: NatsTransport,
  bucket: string,
  memory: boolean | undefined,
): Promise<KeyValueStore> {
  if (memory === true) return new MemoryKeyValueStore();
  return JetStreamKeyValueStore.open(t.connection, bucket);
}

/**
 * Starts one node: connects, discovers its place, and runs its agents until stopped.
 * @throws {FabricError} on bad configuration or when the server cannot be reached.
 */
export async function startFabricNode(o: FabricNodeOptions): Promise<FabricNodeHandle> {
  const clock = o.clock ?? new SystemClock();
  const rng = o.rng ?? new CryptoRng();
  const log = o.logger;
  const keys = loadOrCreateIdentity(o.dataDir);
  const transport = await NatsTransport.connect({
    servers: o.nats,
    name: `genesis-${o.role}${o.name === undefined ? '' : `-${o.name}`}`,
    logger: log,
  });
  const serverName = transport.connection.info?.server_name ?? '';
  try {
    if (o.role === 'tile') return await startTile(o, transport, serverName, keys, clock, rng, log);
    const name = o.name ?? serverName;
    if (levelOfName(name) !== o.role) {
      throw new FabricError(
        FabricErrorCode.ConfigInvalid,
        `a ${o.role} needs a ${o.role}-level name; "${name}" is not (pass --name, or connect to the ${o.role}'s own server)`,
        { details: { name } },
      );
    }
    if (o.role === 'pod') return await startPod(o, name, transport, keys, clock, rng, log);
    if (o.role === 'hub') return await startHub(o, name, transport, clock, log);
    return startRegion(o, name, transport, log);
  } catch (e) {
    await transport.close();
    throw e;
  }
}

async function startTile(
  o: FabricNodeOptions,
  transport: NatsTransport,
  serverName: string,
  keys: KeyPair,
  clock: Clock,
  rng: Rng,
  log: Logger,
): Promise<FabricNodeHandle> {
  const pod = serverName;
  if (levelOfName(pod) !== 'pod') {
    throw new FabricError(
      FabricErrorCode.ConfigInvalid,
      `a tile connects to its pod's server; ${o.nats} is "${pod}", not a pod`,
      { details: { server: pod } },
    );
  }
  const capacity: Capacity = {
    cpuMillis: o.capacity?.cpuMillis ?? cpus().length * 1000,
    memoryMb: o.capacity?.memoryMb ?? Math.floor(totalmem() / 1024 / 1024),
  };
  const transports: NatsTransport[] = [transport];
  const agent = new TileAgent({
    ...(o.moduleDirs === undefined
      ? {}
      : { runner: new KernelRunner(new DirModuleSource(o.moduleDirs)) }),
    transport,
    pod,
    clock,
    rng,
    logger: log,
    keys,
    capacity,
    labels: o.labels ?? {},
    ...(o.name === undefined ? {} : { wantName: o.name }),
    reconnect: async (url, target) => {
      const t = await NatsTransport.connect({ servers: url, logger: log });
      transports.push(t);
      return { transport: t, pod: target };
    },
    onAdmitted: (r) =>
      log.info(
        { name: r.name, pod: r.pod, lease: r.config, capabilities: r.capabilities },
        'admitted',
      ),
  });
  await agent.start();
  return {
    role: 'tile',
    get name() {
      return agent.name ?? '';
    },
    transport: agent.currentTransport as NatsTransport,
    status: () => agent.status(),
    async stop() {
      await agent.stop();
      for (const t of transports) await t.close();
    },
  };
}

async function startPod(
  o: FabricNodeOptions,
  name: string,
  transport: NatsTransport,
  keys: KeyPair,
  clock: Clock,
  rng: Rng,
  log: Logger,
): Promise<FabricNodeHandle> {
  const store = await openStore(transport, MEMBERS_BUCKET, o.memoryState);
  const pod = new PodAgent({
    name,
    hub: parentOfName(name),
    transport,
    clock,
    rng,
    logger: log,
    keys,
    store,
    lease: leaseConfig(o.lease),
    ...(o.tilesMax === undefined ? {} : { tilesMax: o.tilesMax }),
    advertiseUrl: o.nats,
    onEvent: (e: MembershipEvent) => log.info(e, 'membership'),
  });
  await pod.start();
  log.info({ pod: name, lease: pod.lease, store: store.kind }, 'pod serving');
  return {
    role: 'pod',
    name,
    transport,
    status: () => ({ ...pod.status(), reconnects: transport.connectionStats().reconnects }),
    stop: async () => {
      await pod.stop();
      await transport.close();
    },
  };
}

async function startHub(
  o: FabricNodeOptions,
  name: string,
  transport: NatsTransport,
  clock: Clock,
  log: Logger,
): Promise<FabricNodeHandle> {
  const store = await openStore(transport, DESIRED_BUCKET, o.memoryState);
  const lease = leaseConfig(o.lease);
  let controller: Controller | undefined;
  const regionName = parentOfName(name);
  // The region's directory lives in the region's JetStream domain (the region store), reached
  // through this hub server's leaf link; opened lazily so a hub starts even when it is cut off.
  const region =
    o.memoryState === true || regionName === undefined
      ? undefined
      : new RegionDirectory({
          hub: name,
          open: () =>
            JetStreamKeyValueStore.open(transport.connection, REGION_BUCKET, {
              domain: jetstreamDomain(regionName),
            }),
          clock,
          logger: log,
          periodMs: lease.renewMs,
        });
  const hub = new HubAgent({
    name,
    transport,
    clock,
    logger: log,
    renewMs: lease.renewMs,
    ...(region === undefined ? {} : { region }),
    onEvents: (pod, events) => {
      log.info({ pod, events: events.length }, 'membership events from pod');
      if (events.some((e) => e.to === 'dead')) controller?.kick();
    },
  });
  hub.start();
  controller = new Controller({
    name,
    transport,
    clock,
    logger: log,
    store,
    pods: () => hub.knownPods().map((p) => p.pod),
    ...(o.reconcileMs === undefined ? {} : { reconcileMs: o.reconcileMs }),
    ...(o.unreachableGraceMs === undefined ? {} : { unreachableGraceMs: o.unreachableGraceMs }),
  });
  await controller.start();
  log.info({ hub: name, store: store.kind }, 'hub serving');
  const ctl = controller;
  return {
    role: 'hub',
    name,
    transport,
    status: () => ({ ...hub.status(), ...ctl.status() }),
    stop: async () => {
      await ctl.stop();
      hub.stop();
      await hub.settled();
      await transport.close();
    },
  };
}

function startRegion(
  o: FabricNodeOptions,
  name: string,
  transport: NatsTransport,
  log: Logger,
): FabricNodeHandle {
  // A gateway region server routes only; the region's durable state is its directory bucket in
  // the region's JetStream domain (on the region store, or on the region server itself for a
  // DTN-only region). The process counts membership traffic from the hubs below and answers
  // pings with the hubs the directory lists, so operators can see the region and its hubs.
  let events = 0;
  let store: KeyValueStore | undefined;
  // Pings answer at once from the last listing and start a new one in the background: a
  // JetStream round trip (up to KV_API_TIMEOUT_MS when the store is away) never delays them.
  let hubs: string[] = [];
  let listing: Promise<void> | undefined;
  const relist = (): void => {
    if (o.memoryState === true || listing !== undefined) return;
    listing = (async () => {
      try {
        store ??= await JetStreamKeyValueStore.open(transport.connection, REGION_BUCKET, {
          domain: jetstreamDomain(name),
        });
        const out: string[] = [];
        for (const [k, v] of (await store.entries('hub.')).slice(0, REGION_HUBS_MAX)) {
          const r = decodeJson(v, hubRecordSchema);
          if (r !== undefined && hubRecordKey(r.hub) === k) out.push(r.hub);
        }
        hubs = out;
      } catch (e) {
        log.debug({ err: String(e) }, 'region directory unavailable');
      }
    })().finally(() => {
      listing = undefined;
    });
  };
  relist();
  const subs = [
    transport.subscribe(
      `genesis.members.${name}.>`,
      () => {
        events++;
      },
      { pendingMessagesMax: 4096, dropPolicy: 'drop-oldest' },
    ),
    transport.subscribe(Subjects.ping(name), (m) => {
      m.respond(new TextEncoder().encode(JSON.stringify({ name, events, hubs })));
      relist();
    }),
  ];
  log.info({ region: name }, 'region serving');
  return {
    role: 'region',
    name,
    transport,
    status: () => ({ membershipEvents: events, hubs: hubs.length }),
    stop: async () => {
      for (const s of subs) s.unsubscribe();
      await listing;
      await transport.close();
    },
  };
}
