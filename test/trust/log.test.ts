import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DurableLog,
  isTrustError,
  LOG_ENTRY_BYTES_MAX,
  leafHash,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from '../../src/trust/index.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'genesis-trust-log-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const entries = (from: number, n: number): Uint8Array[] =>
  Array.from({ length: n }, (_, i) => enc(`entry-${from + i}`));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(isTrustError(e) ? e.code : e).toBe(code);
    return;
  }
  expect.unreachable(`expected ${code}`);
}

describe('DurableLog', () => {
  it('roots, proofs and reopen agree with the in-memory RFC 9162 tree', () => {
    const path = join(dir, 'log.db');
    const log = DurableLog.open(path, { create: true, origin: 'test.example/log' });
    const all: Uint8Array[] = [];
    for (const n of [1, 2, 5, 1, 13, 40]) {
      const batch = entries(all.length, n);
      const r = log.appendBatch(batch);
      all.push(...batch);
      expect(r.size).toBe(all.length);
      expect(hex(r.root)).toBe(hex(rootFromLeaves(all)));
    }
    for (let size = 1; size <= all.length; size += 7) {
      expect(hex(log.rootAt(size))).toBe(hex(rootFromLeaves(all.slice(0, size))));
      for (let i = 0; i < size; i += 5) {
        expect(
          verifyInclusion(
            leafHash(all[i] as Uint8Array),
            i,
            size,
            log.inclusionProof(i, size),
            log.rootAt(size),
          ),
        ).toBe(true);
      }
      expect(
        verifyConsistency(size, all.length, log.consistencyProof(size), log.rootAt(size), log.root),
      ).toBe(true);
    }
    log.close();
    const again = DurableLog.open(path);
    expect(again.size).toBe(all.length);
    expect(again.origin).toBe('test.example/log');
    expect(hex(again.root)).toBe(hex(rootFromLeaves(all)));
    expect(again.verifyFull().size).toBe(all.length);
    again.close();
  });

  it('property: any batch split gives the same root as one big batch', () => {
    let run = 0;
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 12 }),
        (sizes) => {
          const log = DurableLog.open(join(dir, `p${run++}.db`), {
            create: true,
            origin: 'p',
            synchronous: 'normal',
          });
          let n = 0;
          for (const s of sizes) {
            log.appendBatch(entries(n, s));
            n += s;
          }
          expect(hex(log.root)).toBe(hex(rootFromLeaves(entries(0, n))));
          log.close();
        },
      ),
      { numRuns: 15 },
    );
  });

  it('bad input: oversized entries, out-of-range proofs, missing log, each a typed error and nothing appended', () => {
    const log = DurableLog.open(join(dir, 'b.db'), { create: true, origin: 'b' });
    log.appendBatch(entries(0, 3));
    expectCode(
      () => log.appendBatch([enc('ok'), new Uint8Array(LOG_ENTRY_BYTES_MAX + 1)]),
      'TRUST_TOO_LARGE',
    );
    expect(log.size).toBe(3);
    expectCode(() => log.inclusionProof(3), 'TRUST_OUT_OF_RANGE');
    expectCode(() => log.consistencyProof(0), 'TRUST_OUT_OF_RANGE');
    expectCode(() => log.rootAt(4), 'TRUST_OUT_OF_RANGE');
    log.close();
    expectCode(() => DurableLog.open(join(dir, 'missing.db')), 'TRUST_NOT_FOUND');
  });

  it('a tampered entry, a deleted row or a rewritten tree head is detected on open; the file is left intact', () => {
    const path = join(dir, 't.db');
    const log = DurableLog.open(path, { create: true, origin: 't' });
    log.appendBatch(entries(0, 20));
    log.close();
    const raw = new Database(path);
    raw.prepare('UPDATE entries SET data = ? WHERE idx = 19').run(Buffer.from('evil'));
    raw.close();
    expectCode(() => DurableLog.open(path), 'TRUST_LOG_CORRUPT');
    const raw2 = new Database(path);
    raw2.prepare('UPDATE entries SET data = ? WHERE idx = 19').run(Buffer.from('entry-19'));
    raw2.prepare('UPDATE tree_heads SET root = ? WHERE size = 20').run(Buffer.alloc(32, 1));
    raw2.close();
    expectCode(() => DurableLog.open(path), 'TRUST_LOG_CORRUPT');
    const raw3 = new Database(path);
    raw3
      .prepare('UPDATE tree_heads SET root = ? WHERE size = 20')
      .run(Buffer.from(rootFromLeaves(entries(0, 20))));
    raw3.prepare('DELETE FROM entries WHERE idx = 7').run();
    raw3.close();
    expectCode(() => DurableLog.open(path), 'TRUST_LOG_CORRUPT');
  });

  it('a tampered early entry passes the quick open check but fails verifyFull', () => {
    const path = join(dir, 'f.db');
    const log = DurableLog.open(path, { create: true, origin: 'f' });
    log.appendBatch(entries(0, 300));
    log.close();
    const raw = new Database(path);
    raw.prepare('UPDATE entries SET data = ? WHERE idx = 2').run(Buffer.from('evil'));
    raw.close();
    const again = DurableLog.open(path);
    expectCode(() => again.verifyFull(), 'TRUST_LOG_CORRUPT');
    again.close();
  });

  it('a truncated or garbage database file is TRUST_LOG_CORRUPT and its bytes are not modified', () => {
    const path = join(dir, 'c.db');
    const log = DurableLog.open(path, { create: true, origin: 'c' });
    log.appendBatch(entries(0, 2000));
    log.close();
    const full = statSync(path).size;
    truncateSync(path, Math.floor(full / 2));
    const before = readFileSync(path);
    expectCode(() => {
      const l = DurableLog.open(path);
      l.verifyFull();
    }, 'TRUST_LOG_CORRUPT');
    expect(readFileSync(path).equals(before)).toBe(true);
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, Buffer.alloc(8192, 0x5a));
    expectCode(() => DurableLog.open(junk), 'TRUST_LOG_CORRUPT');
    expect(readFileSync(junk).equals(Buffer.alloc(8192, 0x5a))).toBe(true);
  });
});
