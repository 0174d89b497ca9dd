import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// The object is larger than the bound, so passing proves the pipeline streams (the 1 GiB run
// is the benchmark `npm run bench -- "stream 1 GiB"`).
const SIZE_MIB = 140;
const RSS_GROWTH_MIB_MAX = 128;

describe('streaming put/get in bounded memory', () => {
  it(`a ${SIZE_MIB} MiB object goes in and out bit-exact with < ${RSS_GROWTH_MIB_MAX} MiB RSS growth (child process)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'genesis-stream-'));
    try {
      const child = fileURLToPath(
        new URL('../../bench/store/stream-rss-child.ts', import.meta.url),
      );
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', child, dir, String(SIZE_MIB)],
        { maxBuffer: 1 << 20 },
      );
      const r = JSON.parse(stdout.trim().split('\n').at(-1) as string) as {
        same: boolean;
        growthMiB: number;
        cid: string;
      };
      expect(r.same).toBe(true);
      expect(r.cid).toMatch(/^bafy/);
      expect(r.growthMiB).toBeLessThan(RSS_GROWTH_MIB_MAX);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
