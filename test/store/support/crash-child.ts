/**
 * Child process of the crash test: boots a 16-tile fabric over a data dir and puts objects
 * forever, printing `ACK <cid> <seed> <length>` after each put returns. The parent kills it
 * with SIGKILL at a random moment, restarts on the same data dir and checks every ACK.
 */
import { writeSync } from 'node:fs';
import { EmbeddedFabric, generateTopology, SeededRng } from '../../../src/core/index.ts';
import { attachStore, CHUNK_BYTES } from '../../../src/store/index.ts';
import { bytesOf } from './fabric.ts';

const dataDir = process.argv[2] as string;
const base = Number(process.argv[3] ?? '1000');
const fabric = new EmbeddedFabric({
  topology: generateTopology({ regions: 1, hubs: 2, pods: 2, tiles: 4 }),
  dataDir,
  rng: new SeededRng(base),
});
const cluster = attachStore(fabric);
await fabric.start();
writeSync(1, 'READY\n');
const rng = new SeededRng(base);
for (let i = 0; ; i++) {
  const seed = base + i;
  // Mostly small objects, with a multi-chunk one now and then.
  const len = i % 5 === 4 ? CHUNK_BYTES + rng.int(1, 200_000) : rng.int(0, 300_000);
  const { cid } = await cluster.store.put(bytesOf(len, seed), {
    profile: i % 2 === 0 ? 'pod-4+2' : 'hub-10+4',
  });
  writeSync(1, `ACK ${cid} ${seed} ${len}\n`);
}
