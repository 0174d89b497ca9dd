/**
 * The DTN tier in `genesis up --interplanetary`: each region joined by `dtnLinks` gets a bundle
 * agent (with a persistent store under its node's data dir), the links carry bundles only inside
 * their scheduled contacts and after their one-way light time, and a small CRDT mission log is
 * kept in sync between the regions over bundles. The status line shows bundles in flight,
 * delivered and expired. Nothing heavy happens at boot: agents load their (usually empty)
 * stores and the demo traffic starts after the fabric is up.
 */
import { join } from 'node:path';
import type { EmbeddedFabric, NodeService, TimerHandle } from '../../core/index.ts';
import { FileBundleStore, InterplanetaryTier } from '../../dtn/index.ts';
import { deserializeModel } from '../../learn/index.ts';
import { CrdtReplica } from '../../store/index.ts';
import type { FabricPluginFactory } from '../plugin.ts';
import { GLOBAL_MODEL_SUBJECT } from './learn.ts';

/** How often each region appends an entry to the shared mission log. */
const DTN_DEMO_CHANGE_MS = 5_000;
/** Entries each region keeps in the demo log (older ones are dropped, bounding the doc). */
const DTN_DEMO_ENTRIES_MAX = 32;

type MissionLog = { entries: Record<string, string> };

/** `genesis up` plugin of the DTN layer. */
export const dtnPlugin: FabricPluginFactory = () => {
  let tier: InterplanetaryTier | undefined;
  let clockTimers: TimerHandle[] = [];
  let fabricRef: EmbeddedFabric | undefined;
  const fl: ModelCarriage = {
    sent: 0,
    received: 0,
    lastRound: 0,
    rejected: 0,
    unsubscribe: () => {},
  };
  return {
    name: 'dtn',
    attach(fabric, options) {
      if (!options.interplanetary || fabric.topology.dtnLinks.length === 0) return;
      fabricRef = fabric;
      const t = new InterplanetaryTier({
        topology: fabric.topology,
        clock: fabric.clock,
        logger: fabric.logger,
        storeFor: (region) =>
          new FileBundleStore(join(options.dataDir, 'nodes', region, 'dtn', 'bundles')),
      });
      tier = t;
      for (const [region, agent] of t.agents) {
        const service: NodeService = {
          name: 'dtn',
          start: () => agent.start(),
          stop: () => agent.stop(),
          status: () => ({ held: agent.held, delivered: agent.stats.delivered }),
        };
        fabric.nodes.get(region)?.attach(service);
      }
    },
    afterStart(fabric) {
      const t = tier;
      if (t === undefined) return;
      carryModels(fabric, t, fl);
      // Loading Automerge takes a few hundred ms: start the demo after boot, in the background.
      clockTimers.push(fabric.clock.setTimeout(() => startDemo(fabric, t, clockTimers), 0));
    },
    status() {
      if (tier === undefined) return {};
      const s = tier.status();
      return {
        inFlight: s.inFlight,
        delivered: s.delivered,
        expired: s.expired,
        flSent: fl.sent,
        flReceived: fl.received,
      };
    },
    stop() {
      fl.unsubscribe();
      for (const h of clockTimers) fabricRef?.clock.clearTimer(h);
      clockTimers = [];
      tier?.network.close();
    },
  };
};

/** Keeps a CRDT mission log in sync between the DTN regions: one change per region every few seconds. */
function startDemo(fabric: EmbeddedFabric, t: InterplanetaryTier, timers: TimerHandle[]): void {
  const regions = [...t.agents.keys()];
  const first = CrdtReplica.create<MissionLog>({ entries: {} });
  const initial = first.save();
  regions.forEach((region, i) => {
    const replica = i === 0 ? first : CrdtReplica.fromBytes<MissionLog>(initial);
    const link = t.syncCrdt(
      region,
      regions.filter((r) => r !== region),
      replica,
      'mission-log',
    );
    let n = 0;
    timers.push(
      fabric.clock.setInterval(() => {
        const k = n++;
        replica.change((d) => {
          d.entries[`${region}-${k}`] = new Date(fabric.clock.now()).toISOString();
          const old = `${region}-${k - DTN_DEMO_ENTRIES_MAX}`;
          if (old in d.entries) delete d.entries[old];
        });
        link.changed();
      }, DTN_DEMO_CHANGE_MS),
    );
  });
}

/** Federated-learning models carried over the DTN link, for the status line. */
interface ModelCarriage {
  sent: number;
  received: number;
  lastRound: number;
  rejected: number;
  unsubscribe: () => void;
}

/** The bundle service number (ipn service) of federated-learning model updates. */
export const SERVICE_FL_MODEL = 11;

/**
 * Carries each global model the learn layer publishes on the Earth side to every DTN region as
 * a bundle; the receiving region decodes it with the learn layer's own parser, so a corrupt or
 * foreign payload is counted as rejected, never used. dtn and learn share a rank and cannot
 * import each other: this composition root is where they meet.
 */
function carryModels(fabric: EmbeddedFabric, t: InterplanetaryTier, fl: ModelCarriage): void {
  const links = fabric.topology.dtnLinks;
  const dtnRegions = new Set(fabric.topology.dtnRegions);
  for (const region of dtnRegions) {
    const off = t.onOpaque(region, SERVICE_FL_MODEL, (bytes) => {
      try {
        deserializeModel(bytes);
        fl.received++;
      } catch {
        fl.rejected++;
      }
    });
    const prev = fl.unsubscribe;
    fl.unsubscribe = () => {
      prev();
      off();
    };
  }
  const sub = fabric.transport.subscribe(
    GLOBAL_MODEL_SUBJECT,
    (msg) => {
      for (const link of links) {
        const [earth, remote] = dtnRegions.has(link.to)
          ? [link.from, link.to]
          : [link.to, link.from];
        t.sendOpaque(earth, remote, SERVICE_FL_MODEL, msg.data);
        fl.sent++;
      }
    },
    { pendingMessagesMax: 16, dropPolicy: 'drop-oldest' },
  );
  const prev = fl.unsubscribe;
  fl.unsubscribe = () => {
    prev();
    sub.unsubscribe();
  };
}
