/**
 * Test harness of the hierarchical secure-aggregation tests: a small fabric over the in-process
 * transport (or any Transport) in virtual time, tiles whose "training" adds a known delta, and
 * wrappers that tamper with what a tile answers or record what a pod receives.
 */
import { decode } from '@ipld/dag-cbor';
import {
  EmbeddedFabric,
  generateTopology,
  type Message,
  type NodeContext,
  type NodeService,
  SeededRng,
  SystemClock,
  type Transport,
  VirtualClock,
} from '../../src/core/index.ts';
import {
  GlobalCoordinator,
  type HierSettings,
  LevelAggregator,
  logisticRegression,
  PDM_FEATURES,
  TileLearner,
  testSet,
} from '../../src/learn/index.ts';

export const spec = logisticRegression(PDM_FEATURES.length);
export const D = PDM_FEATURES.length + 1;

export const baseSettings: HierSettings = {
  model: spec,
  optimizer: { kind: 'sgd', lr: 0.1 },
  batchSize: 8,
  windowsPerTile: 64,
  seed: 1,
  kappa: { tile: 1, pod: 1, hub: 1, region: 1 },
  tileDeadlineMs: 1_000,
  secagg: 'full',
  secureRoundMs: 400,
  dropoutRate: 0,
};

/** A tile's scripted training: adds `delta` to every parameter, reports `weight` examples. */
export interface TileScript {
  readonly delta: number | Float32Array;
  readonly weight: number;
}

/** Settings of one tile whose training is scripted. */
export function scripted(s: HierSettings, t: TileScript): HierSettings {
  return {
    ...s,
    train: async (task) => {
      const params = new Float32Array(task.params.length);
      for (let i = 0; i < params.length; i++) {
        const d = typeof t.delta === 'number' ? t.delta : (t.delta[i] as number);
        params[i] = (task.params[i] as number) + d;
      }
      return { params, numExamples: t.weight, loss: 0.25 };
    },
  };
}

/** Drives virtual time forward while `p` is pending (a few ms per event-loop turn). */
export async function drive<T>(clock: VirtualClock, p: Promise<T>, stepMs = 5): Promise<T> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  while (!done) {
    await new Promise((r) => setImmediate(r));
    if (!done) await clock.advance(stepMs);
  }
  return p;
}

/** A transport seen through a node's eyes: every call delegates to `t`, with hooks. */
export function wrapTransport(
  t: Transport,
  hooks: {
    onDeliver?: (m: Message) => void;
    onReply?: (subject: string, reply: Uint8Array) => void;
    tamper?: (request: Message, reply: Uint8Array) => Uint8Array | undefined;
  },
): Transport {
  return {
    kind: t.kind,
    publish: (s, d, o) => t.publish(s, d, o),
    subscribe: (s, h, o) =>
      t.subscribe(
        s,
        (m) => {
          hooks.onDeliver?.(m);
          const tamper = hooks.tamper;
          if (tamper === undefined) return h(m);
          return h({
            subject: m.subject,
            data: m.data,
            headers: m.headers,
            reply: m.reply,
            respond: (data, opts) => {
              const out = tamper(m, data);
              return out === undefined ? true : m.respond(out, opts);
            },
          });
        },
        o,
      ),
    request: async (s, d, o) => {
      const m = await t.request(s, d, o);
      hooks.onReply?.(s, m.data);
      return m;
    },
    flush: () => t.flush(),
    close: () => t.close(),
    stats: () => t.stats(),
  };
}

/** Runs `inner` with a wrapped transport. */
export class Wrapped implements NodeService {
  readonly name = 'learn';
  constructor(
    readonly inner: NodeService,
    private readonly wrap: (t: Transport) => Transport,
  ) {}
  start(ctx: NodeContext): void | Promise<void> {
    return this.inner.start({ ...ctx, transport: this.wrap(ctx.transport) });
  }
  stop(): void | Promise<void> {
    return this.inner.stop();
  }
}

/** The `kind` of a DAG-CBOR SecAgg message, or undefined for anything else. */
export function kindOf(bytes: Uint8Array): string | undefined {
  try {
    const v = decode(bytes) as { kind?: unknown };
    return typeof v?.kind === 'string' ? v.kind : undefined;
  } catch {
    return undefined;
  }
}

/** A tile that misbehaves: `fault(kind of its reply, reply, request)` → bytes to send, or undefined (silence). */
export type TileFault = (
  kind: string | undefined,
  reply: Uint8Array,
  request: Message,
) => Uint8Array | undefined;

/** One fabric and its services. */
export interface HierRig {
  readonly fabric: EmbeddedFabric;
  readonly coordinator: GlobalCoordinator;
  readonly tiles: Map<string, TileLearner>;
  readonly pods: Map<string, LevelAggregator>;
  /** Runs one global round in virtual time. */
  round(): ReturnType<GlobalCoordinator['runRound']>;
  stop(): Promise<void>;
}

/** Options of {@link startRig}. */
export interface RigOptions {
  readonly pods: number;
  readonly tilesPerPod: number;
  readonly settings?: Partial<HierSettings>;
  /**
   * Scripted training per tile index (topology order); default delta 0.1·(i+1), weight 8.
   * `null`: the tile trains as `settings` say (real training, or `settings.train`).
   */
  readonly script?: ((i: number) => TileScript) | null;
  /** Faults per tile index. */
  readonly fault?: (i: number) => TileFault | undefined;
  /** Hooks on what each pod receives. */
  readonly podHooks?: (pod: string) => Parameters<typeof wrapTransport>[1] | undefined;
  readonly transport?: Transport;
  /** A node's own transport (its own NATS connection), instead of the fabric's. */
  readonly transportFor?: (node: string) => Transport | undefined;
  /** Run on the system clock (real servers), not in virtual time. */
  readonly realTime?: boolean;
  readonly seed?: number;
}

/** Boots a fabric of 1 region, 1 hub, `pods` pods and `tilesPerPod` tiles each, in virtual time. */
export async function startRig(o: RigOptions): Promise<HierRig> {
  const clock = o.realTime === true ? new SystemClock() : new VirtualClock();
  const topology = generateTopology({ regions: 1, hubs: 1, pods: o.pods, tiles: o.tilesPerPod });
  const fabric = new EmbeddedFabric({
    topology,
    clock,
    rng: new SeededRng(o.seed ?? 1),
    heartbeatIntervalMs: 600_000,
    ...(o.transport === undefined ? {} : { transport: o.transport }),
  });
  const settings = { ...baseSettings, ...o.settings };
  const coordinator = new GlobalCoordinator({
    ...settings,
    strategy: 'fedavg',
    expectedTiles: o.pods * o.tilesPerPod,
    test: testSet(1, 20),
  });
  const tiles = new Map<string, TileLearner>();
  const pods = new Map<string, LevelAggregator>();
  let i = 0;
  for (const node of fabric.nodes.values()) {
    if (node.level === 'global') node.attach(coordinator);
    else if (node.level === 'tile') {
      const index = i++;
      const script =
        o.script === null
          ? undefined
          : (o.script?.(index) ?? { delta: 0.1 * (index + 1), weight: 8 });
      const tile = new TileLearner(script === undefined ? settings : scripted(settings, script));
      tiles.set(node.name, tile);
      const fault = o.fault?.(index);
      const own = o.transportFor?.(node.name);
      node.attach(
        fault === undefined && own === undefined
          ? tile
          : new Wrapped(tile, (t) =>
              wrapTransport(own ?? t, {
                ...(fault === undefined
                  ? {}
                  : { tamper: (req, reply) => fault(kindOf(reply), reply, req) }),
              }),
            ),
      );
    } else {
      const agg = new LevelAggregator(settings);
      const hooks = node.level === 'pod' ? o.podHooks?.(node.name) : undefined;
      const own = o.transportFor?.(node.name);
      if (node.level === 'pod') pods.set(node.name, agg);
      node.attach(
        hooks === undefined && own === undefined
          ? agg
          : new Wrapped(agg, (t) => wrapTransport(own ?? t, hooks ?? {})),
      );
    }
  }
  await fabric.start();
  return {
    fabric,
    coordinator,
    tiles,
    pods,
    round: () =>
      clock instanceof VirtualClock ? drive(clock, coordinator.runRound()) : coordinator.runRound(),
    stop: () => fabric.stop(),
  };
}

/** Σ w_i δ_i / Σ w_i over the listed tiles (constant deltas). */
export function weightedMean(scripts: readonly TileScript[]): number {
  let num = 0;
  let den = 0;
  for (const s of scripts) {
    num += s.weight * (s.delta as number);
    den += s.weight;
  }
  return num / den;
}
