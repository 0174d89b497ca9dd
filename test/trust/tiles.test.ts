import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DurableLog,
  handleTileRequest,
  leafHash,
  parseTileIndex,
  rootFromLeaves,
  tileIndexPath,
} from '../../src/trust/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'genesis-tiles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const entries = Array.from({ length: 700 }, (_, i) => new TextEncoder().encode(`entry-${i}`));

describe('tlog-tiles serving', () => {
  const log = DurableLog.open(join(dir, 't.db'), {
    create: true,
    origin: 'tiles.test',
    synchronous: 'normal',
  });
  log.appendBatch(entries);

  it('encodes and parses tile indexes as in the spec (1234067 → x001/x234/067)', () => {
    expect(tileIndexPath(1234067)).toBe('x001/x234/067');
    expect(tileIndexPath(0)).toBe('000');
    expect(parseTileIndex(['x001', 'x234', '067'])).toEqual({ index: 1234067, width: 256 });
    expect(parseTileIndex(['002.p', '188'])).toEqual({ index: 2, width: 188 });
    for (const bad of [
      ['1'],
      ['x001'],
      ['002.p', '256'],
      ['002.p', '0'],
      ['002.p', '01'],
      ['x01', '000'],
    ])
      expect(parseTileIndex(bad)).toBeUndefined();
  });

  it('level-0 tiles hold leaf hashes; level-1 tiles hold roots of 256-leaf subtrees; partial widths match the tree', () => {
    const full = handleTileRequest(log, '/tile/0/000');
    expect(full.status).toBe(200);
    expect(full.headers['cache-control']).toContain('immutable');
    expect(
      Buffer.from(full.body.subarray(32, 64)).equals(
        Buffer.from(leafHash(entries[1] as Uint8Array)),
      ),
    ).toBe(true);
    const partial = handleTileRequest(log, '/tile/0/002.p/188');
    expect(partial.body.length).toBe(188 * 32);
    expect(handleTileRequest(log, '/tile/0/002.p/189').status).toBe(404);
    expect(handleTileRequest(log, '/tile/0/002').status).toBe(404);
    const l1 = handleTileRequest(log, '/tile/1/000.p/2');
    expect(
      Buffer.from(l1.body.subarray(32, 64)).equals(
        Buffer.from(rootFromLeaves(entries.slice(256, 512))),
      ),
    ).toBe(true);
  });

  it('entry bundles are uint16-length-prefixed entries', () => {
    const b = handleTileRequest(log, '/tile/entries/002.p/3').body;
    const got: string[] = [];
    for (let off = 0; off < b.length; ) {
      const n = ((b[off] as number) << 8) | (b[off + 1] as number);
      got.push(new TextDecoder().decode(b.subarray(off + 2, off + 2 + n)));
      off += 2 + n;
    }
    expect(got).toEqual(['entry-512', 'entry-513', 'entry-514']);
    expect(handleTileRequest(log, '/checkpoint').status).toBe(404);
    log.saveCheckpointNote(700, 'tiles.test\n700\nAAAA\n\n');
    expect(new TextDecoder().decode(handleTileRequest(log, '/checkpoint').body)).toContain('700');
    expect(handleTileRequest(log, '/tile/9/000').status).toBe(404);
    expect(handleTileRequest(log, '/etc/passwd').status).toBe(404);
  });
});
