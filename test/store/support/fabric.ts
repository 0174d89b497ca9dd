/** Test helpers: an embedded fabric in virtual time with the store attached to every tile. */
import {
  EmbeddedFabric,
  generateTopology,
  SeededRng,
  type TopologySize,
  VirtualClock,
} from '../../../src/core/index.ts';
import {
  attachStore,
  type MemoryShardStore,
  type StoreCluster,
  type StoreClusterOptions,
} from '../../../src/store/index.ts';

export interface TestCluster {
  fabric: EmbeddedFabric;
  cluster: StoreCluster;
  stop(): Promise<void>;
  kill(tile: string): Promise<void>;
  memStore(tile: string): MemoryShardStore;
}

export async function startCluster(
  size: TopologySize = { regions: 1, hubs: 2, pods: 2, tiles: 4 },
  options: StoreClusterOptions & { dataDir?: string } = {},
): Promise<TestCluster> {
  const clock = new VirtualClock();
  const fabric = new EmbeddedFabric({
    topology: generateTopology(size),
    clock,
    rng: new SeededRng(7),
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
  });
  const cluster = attachStore(fabric, options);
  await fabric.start();
  return {
    fabric,
    cluster,
    stop: async () => {
      await cluster.close();
      await fabric.stop();
    },
    kill: async (tile) => {
      const node = fabric.nodes.get(tile);
      if (node === undefined) throw new Error(`no tile ${tile}`);
      await node.stop();
    },
    memStore: (tile) => cluster.tiles.get(tile)?.store as MemoryShardStore,
  };
}

/** Deterministic pseudo-random bytes. */
export function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  new SeededRng(seed).fill(out);
  return out;
}
