import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DurableLog,
  leafHash,
  rootFromLeaves,
  serveTiles,
  verifyInclusion,
} from '../../src/trust/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'genesis-tiles-http-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('genesis log serve (tlog-tiles over real HTTP)', () => {
  it('a client rebuilds the root and an inclusion proof from fetched tiles only', async () => {
    const entries = Array.from({ length: 300 }, (_, i) => new TextEncoder().encode(`e${i}`));
    const log = DurableLog.open(join(dir, 'l.db'), {
      create: true,
      origin: 'http.test',
      synchronous: 'normal',
    });
    log.appendBatch(entries);
    const { server, port } = await serveTiles(log, 0);
    try {
      const get = async (p: string): Promise<Response> => fetch(`http://127.0.0.1:${port}${p}`);
      const full = new Uint8Array(await (await get('/tile/0/000')).arrayBuffer());
      const part = new Uint8Array(await (await get('/tile/0/001.p/44')).arrayBuffer());
      const hashes = [
        ...Array.from({ length: 256 }, (_, i) => full.subarray(i * 32, i * 32 + 32)),
        ...Array.from({ length: 44 }, (_, i) => part.subarray(i * 32, i * 32 + 32)),
      ];
      expect(hashes.length).toBe(300);
      // Rebuild the tree from the fetched leaf hashes and compare with the log's root.
      const { MemoryMerkleTree } = await import('../../src/trust/index.ts');
      const t = new MemoryMerkleTree();
      for (const h of hashes) t.appendLeafHash(h);
      expect(Buffer.from(t.root()).equals(Buffer.from(rootFromLeaves(entries)))).toBe(true);
      expect(
        verifyInclusion(
          leafHash(entries[299] as Uint8Array),
          299,
          300,
          log.inclusionProof(299),
          t.root(),
        ),
      ).toBe(true);
      expect((await get('/tile/0/001')).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/tile/0/000`, { method: 'POST' })).status).toBe(
        405,
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      log.close();
    }
  });
});
