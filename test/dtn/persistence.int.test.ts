import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { SystemClock } from '../../src/core/index.ts';
import { BundleAgent, FileBundleStore, ipn } from '../../src/dtn/index.ts';

it('kill -9 during a burst of sends loses no accepted bundle', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dtn-kill-'));
  try {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./fixtures/accept-child.ts', import.meta.url)),
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const accepted: string[] = [];
    let buf = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) if (l.startsWith('accepted ')) accepted.push(l.slice(9));
        if (accepted.length >= 120) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    expect(accepted.length).toBeGreaterThanOrEqual(120);
    const agent = new BundleAgent({
      nodeId: ipn(1, 0),
      clock: new SystemClock(),
      store: new FileBundleStore(dir),
    });
    agent.start();
    const held = new Set(agent.heldIds());
    agent.stop();
    const lost = accepted.filter((id) => !held.has(id));
    expect(lost).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
