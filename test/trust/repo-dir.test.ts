import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/core/index.ts';
import {
  initRepoDir,
  isTrustError,
  openRepoDir,
  verifyFromRepoDir,
} from '../../src/trust/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'genesis-repo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('update repository directory (what genesis update init|publish|verify run)', () => {
  it('init → publish → verify with witnessed inclusion; a tampered file is refused', async () => {
    const clock = new VirtualClock(Date.parse('2026-06-01T00:00:00Z'));
    const policy = initRepoDir(dir, 'repo.test/releases', clock);
    expect(policy.quorum).toBe(2);
    expect(statSync(join(dir, 'keys', 'targets.key')).mode & 0o777).toBe(0o600);
    const r = openRepoDir(dir, clock);
    try {
      r.repository.publish('app.wasm', new TextEncoder().encode('module v1'), ['tile-v1']);
      const round = await r.server.publishCheckpoint();
      expect(round.cosigners.length).toBe(3);
    } finally {
      r.close();
    }
    const { target } = await verifyFromRepoDir(dir, 'app.wasm', clock, { hardwareId: 'tile-v1' });
    expect(new TextDecoder().decode(target.bytes)).toBe('module v1');
    expect(target.cosigners.length).toBe(3);
    writeFileSync(join(dir, 'targets', 'app.wasm'), 'module v1 with a backdoor');
    const err = await verifyFromRepoDir(dir, 'app.wasm', clock).catch((e: unknown) => e);
    expect(isTrustError(err) ? err.code : err).toMatch(/TRUST_ENDLESS_DATA|TRUST_TARGET_MISMATCH/);
  });
});
