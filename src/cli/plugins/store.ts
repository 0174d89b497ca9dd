/**
 * The store in `genesis up`: every tile runs a blockstore under its node's data dir; the
 * repair scanner runs in the background after start (its first pass after one interval, so
 * boot stays fast), and a quick pass runs as soon as the fabric declares a tile dead. Status: objects (pins), bytes, shards and shards under repair.
 */
import { attachStore, REPAIR_INTERVAL_MS_DEFAULT, type StoreCluster } from '../../store/index.ts';
import type { FabricPlugin, FabricPluginFactory } from '../plugin.ts';

/** The store plugin of `genesis up`. */
export const storePlugin: FabricPluginFactory = (): FabricPlugin => {
  let cluster: StoreCluster | undefined;
  return {
    name: 'store',
    attach(fabric) {
      cluster = attachStore(fabric);
    },
    afterStart(fabric) {
      cluster?.startScanner(fabric.clock, REPAIR_INTERVAL_MS_DEFAULT);
      // A tile the fabric declares dead gets its shards rebuilt now, not at the next interval
      // (quick pass: membership and missing shards; the periodic pass also scrubs).
      fabric.onMembership((e) => {
        if (e.to !== 'dead' || fabric.topology.nodes.get(e.child)?.level !== 'tile') return;
        cluster
          ?.repair({ scrub: false })
          .catch((err: unknown) =>
            fabric.logger.warn({ err: String(err) }, 'store repair after tile death failed'),
          );
      });
    },
    status() {
      const s = cluster?.status();
      return s === undefined
        ? {}
        : { objects: s.objects, bytes: s.bytes, shards: s.shards, underRepair: s.underRepair };
    },
    async stop() {
      await cluster?.close();
    },
  };
};
