/**
 * Child process of the bounded-memory check: boots a 16-tile fabric on disk, streams an object
 * of SIZE_MIB through put and back through get (comparing SHA-256 of what went in and came out),
 * and prints one JSON line with the RSS growth over the baseline taken after boot.
 * Usage: stream-rss-child.ts DATA_DIR SIZE_MIB
 */
import { createHash, randomFillSync } from 'node:crypto';
import { EmbeddedFabric, generateTopology, SeededRng } from '../../src/core/index.ts';
import { attachStore } from '../../src/store/index.ts';

const dataDir = process.argv[2] as string;
const sizeMiB = Number(process.argv[3] ?? '1024');
const PIECE_BYTES = 256 * 1024;
const fabric = new EmbeddedFabric({
  topology: generateTopology({ regions: 1, hubs: 2, pods: 2, tiles: 4 }),
  dataDir,
  rng: new SeededRng(1),
});
// fsync is off here: this process measures memory, not durability (the crash test covers that).
const cluster = attachStore(fabric, { durable: false });
await fabric.start();
// Warm up codecs, WASM and SQLite statements so the baseline includes them.
await cluster.store.put(new Uint8Array(3 * 1024 * 1024), { pin: false });
(globalThis as { gc?: () => void }).gc?.();
const baseMiB = process.memoryUsage().rss / 2 ** 20;
let peakMiB = baseMiB;
const sampler = setInterval(() => {
  peakMiB = Math.max(peakMiB, process.memoryUsage().rss / 2 ** 20);
}, 20);

const inHash = createHash('sha256');
async function* source() {
  const piece = new Uint8Array(PIECE_BYTES);
  for (let sent = 0; sent < sizeMiB * 2 ** 20; sent += PIECE_BYTES) {
    randomFillSync(piece);
    inHash.update(piece);
    yield piece;
  }
}
const t0 = performance.now();
const { cid, size } = await cluster.store.put(source());
const putMs = performance.now() - t0;
const outHash = createHash('sha256');
const t1 = performance.now();
let got = 0;
for await (const chunk of cluster.store.get(cid)) {
  outHash.update(chunk);
  got += chunk.length;
}
const getMs = performance.now() - t1;
clearInterval(sampler);
peakMiB = Math.max(peakMiB, process.memoryUsage().rss / 2 ** 20);
const same = inHash.digest('hex') === outHash.digest('hex') && got === size;
await cluster.close();
await fabric.stop();
process.stdout.write(
  `${JSON.stringify({ cid, sizeMiB, same, baseMiB, peakMiB, growthMiB: peakMiB - baseMiB, putMs, getMs })}\n`,
);
