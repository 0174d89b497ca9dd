import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DurableLog, rootFromLeaves } from '../../src/trust/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'genesis-trust-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the appender until it has acknowledged `minAcks` batches plus a random delay, then kill -9. */
function runAndKill(db: string, minAcks: number, extraMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin/run-ts.js'), join(ROOT, 'test/trust/fixtures/crash-appender.ts'), db],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let lastAck = 0;
    let acks = 0;
    let buf = '';
    let stderr = '';
    let killing = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        const m = /^ack (\d+)$/.exec(l);
        if (m) {
          lastAck = Number(m[1]);
          acks++;
        }
      }
      if (acks >= minAcks && !killing) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), extraMs);
      }
    });
    child.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`appender exited without kill: ${stderr}`));
      else resolve(lastAck);
    });
  });
}

describe('DurableLog crash safety (kill -9 during appends)', () => {
  it('never loses an acknowledged entry and never comes back shorter or forked', async () => {
    const db = join(dir, 'crash.db');
    let previousSize = 0;
    for (const [round, extraMs] of [7, 0, 41].entries()) {
      const acked = await runAndKill(db, 5 + round * 3, extraMs);
      const log = DurableLog.open(db);
      try {
        expect(log.size).toBeGreaterThanOrEqual(acked);
        expect(log.size).toBeGreaterThanOrEqual(previousSize);
        // Exact content: the stored tree equals the tree of entry-0..entry-(size-1), so no entry
        // was lost, reordered or replaced (no fork).
        const want = Array.from({ length: log.size }, (_, i) =>
          new TextEncoder().encode(`entry-${i}`),
        );
        expect(Buffer.from(log.root).equals(Buffer.from(rootFromLeaves(want)))).toBe(true);
        expect(log.verifyFull().size).toBe(log.size);
        previousSize = log.size;
      } finally {
        log.close();
      }
    }
    expect(previousSize).toBeGreaterThan(0);
  });
});
