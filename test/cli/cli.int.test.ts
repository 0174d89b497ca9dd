import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/run-cli.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'genesis-cli-'));

describe('genesis CLI', () => {
  it('boots the default fabric, prints a JSON summary and exits 0', async () => {
    const dir = tmp();
    const r = await runCli([
      'up',
      '--for',
      '2s',
      '--json',
      '--port',
      '0',
      '--data-dir',
      join(dir, 'data'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<
      string,
      unknown
    >;
    expect(summary['nodesStarted']).toEqual({ global: 1, region: 1, hub: 2, pod: 4, tile: 16 });
    expect(summary['heartbeatsSent']).toBeGreaterThan(23);
    expect(summary['errors']).toBe(0);
    expect(r.stderr).toMatch(/stopped cleanly/);
  });

  it('serves /metrics and /healthz while running', async () => {
    const dir = tmp();
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    // Start-up time varies a lot on a loaded machine: poll for up to 60 s, then let --for end it.
    const run = runCli(['up', '--for', '6s', '--port', String(port), '--data-dir', dir], {
      timeoutMs: 90_000,
    });
    let metrics = '';
    let health: Record<string, unknown> = {};
    for (let i = 0; i < 600 && metrics === ''; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as Record<
          string,
          unknown
        >;
      } catch {
        metrics = '';
      }
    }
    expect(metrics).toMatch(/genesis_heartbeats_sent_total \d+/);
    expect(metrics).toMatch(/genesis_nodes_up\{level="tile"\} 16/);
    expect(health['ok']).toBe(true);
    expect((await run).code).toBe(0);
  });

  it.each([
    [['up', '--tiles', '0'], /--tiles must be an integer/],
    [['up', '--bogus'], /unknown option '--bogus'/],
    [['up', '--topology', '/nonexistent/topo.yaml'], /TOPOLOGY_FILE_UNREADABLE/],
    [['up', '--for', 'soon'], /not a duration/],
    [['up', '--data-dir', '/etc/passwd/x', '--for', '1s'], /not writable/],
    [['frobnicate'], /unknown command/],
  ])('rejects bad input %j with one line and exit code 2', async (args, pattern) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('names the bad field and line of a malformed topology', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 't.yaml'), 'regions:\n  - name: EU\n    hubs: []\n');
    const r = await runCli(['up', '--topology', join(dir, 't.yaml'), '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/t\.yaml:2: field "regions\.0\.name"/);
  });

  it('refuses a port in use without leaving a fabric running', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const r = await runCli(['up', '--port', String(port), '--data-dir', tmp(), '--for', '5s']);
    server.close();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`port ${port} is in use`));
  });

  it('prints help and version', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/up \[options\]/);
    const v = await runCli(['version']);
    expect(v.stdout).toMatch(/^genesis \d+\.\d+\.\d+/);
  });

  it('prints the raw CID a workload names a kernel module by, and refuses a missing file', async () => {
    const dir = tmp();
    const file = join(dir, 'm.wasm');
    const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    writeFileSync(file, bytes);
    const r = await runCli(['store', 'cid', file, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { cid: string; bytes: number };
    expect(out.bytes).toBe(8);
    // CIDv1, raw codec (0x55), sha2-256 (0x12) of these bytes, base32: what rawCid() names.
    const { CID } = await import('multiformats/cid');
    const { sha256 } = await import('multiformats/hashes/sha2');
    expect(out.cid).toBe(CID.createV1(0x55, await sha256.digest(bytes)).toString());
    const bad = await runCli(['store', 'cid', join(dir, 'absent.wasm')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/CLI_FILE_UNREADABLE/);
  });
});
