/**
 * Child process of the tile-memory benchmark: boots N idle tiles in a fresh process and prints
 * RSS before and after boot, and transport queue depth over time, as one JSON line. A fresh
 * process per size keeps the measurement free of earlier allocations.
 */
import { EmbeddedFabric, generateTopology } from '../../src/core/index.ts';

const tiles = Number(process.argv[2] ?? '1000');
const periods = Number(process.argv[3] ?? '3');
const gc = (globalThis as { gc?: () => void }).gc;
const settle = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage().rss;
};

// 10 tiles per pod, 10 pods per hub: the shape of a city block.
const pods = Math.max(1, Math.ceil(tiles / 10));
const hubs = Math.max(1, Math.ceil(pods / 10));
const topology = generateTopology({ regions: 1, hubs, pods: Math.ceil(pods / hubs), tiles: 10 });
const before = await settle();
const fabric = new EmbeddedFabric({ topology, heartbeatIntervalMs: 1_000 });
const t0 = performance.now();
await fabric.start();
const bootMs = performance.now() - t0;
const pending: number[] = [];
for (let p = 0; p < periods; p++) {
  await new Promise((r) => setTimeout(r, 1_000));
  pending.push(fabric.transport.stats().pending);
}
const after = await settle();
const stats = fabric.stats();
await fabric.stop();
process.stdout.write(
  `${JSON.stringify({ tiles: stats.nodesUp.tile, nodes: topology.nodes.size, before, after, bootMs, pending, heartbeatsSent: stats.heartbeatsSent, heartbeatsReceived: stats.heartbeatsReceived, dropped: stats.transportDropped })}\n`,
);
