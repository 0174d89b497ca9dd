/**
 * The store in `genesis up`: every tile runs a blockstore under its node's data dir; the
 * repair scanner runs in the background after start (its first pass after one interval, so
 * boot stays fast). Status: objects (pins), bytes, shards and shards under repair.
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
