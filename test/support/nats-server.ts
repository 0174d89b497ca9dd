/**
 * Test harness: real nats-server processes (from PATH) on free loopback ports, each with its
 * config file and JetStream store in a temp dir. `startNatsServer()` gives one standalone
 * server; test/fabric/harness.ts starts a whole topology (leaf nodes, gateways, JetStream
 * domains, a cuttable WAN relay).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, NatsServerProcess } from '../../src/fabric/index.ts';

/** One running test server. */
export interface TestNatsServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly process: NatsServerProcess;
  /** Stops the server and removes its temp dir. */
  stop(): Promise<void>;
}

/** Starts a standalone nats-server with JetStream on a free port. */
export async function startNatsServer(
  options: { jetstream?: boolean; extraConfig?: string } = {},
): Promise<TestNatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'genesis-nats-'));
  const port = await freePort();
  const lines = ['server_name: "test"', `listen: "127.0.0.1:${port}"`, 'max_payload: 1048576'];
  if (options.jetstream !== false)
    lines.push('jetstream {', `  store_dir: ${JSON.stringify(join(dir, 'js'))}`, '}');
  if (options.extraConfig !== undefined) lines.push(options.extraConfig);
  const conf = join(dir, 'server.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const proc = new NatsServerProcess('test', conf);
  await proc.start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    process: proc,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
