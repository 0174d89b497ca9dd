/**
 * Starts and stops real `nats-server` processes (the Debian package's binary on PATH) from
 * config files: used by `genesis fabric up` and by the integration-test harness. A server is
 * ready when it logs "Server is ready"; start fails with FABRIC_SERVER_START_FAILED carrying
 * the server's last log lines when it exits early or does not become ready in time.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { SupervisedProcess } from './child.ts';
import { FabricError, FabricErrorCode } from './errors.ts';

/** How long a server may take to become ready. */
export const NATS_SERVER_READY_MS_MAX = 15_000;
/** Log lines of a server kept for error reports. */
export const NATS_SERVER_LOG_LINES_MAX = 200;
/** Grace after SIGTERM before a server is killed. */
export const NATS_SERVER_STOP_GRACE_MS = 5_000;

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A running nats-server process. */
export class NatsServerProcess extends SupervisedProcess {
  private readonly log: string[] = [];

  /**
   * @param name label used in errors and logs
   * @param configPath the config file the server reads (`-c`)
   * @param binary the executable (default `nats-server` from PATH)
   */
  constructor(
    readonly name: string,
    readonly configPath: string,
    private readonly binary = 'nats-server',
  ) {
    super(NATS_SERVER_STOP_GRACE_MS);
  }

  /** The last log lines (stderr), for diagnostics. */
  recentLog(): readonly string[] {
    return this.log;
  }

  /** Starts the server and resolves when it reports ready. */
  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn(this.binary, ['-c', this.configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.adopt(child);
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      let done = false;
      const finish = (e?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e === undefined) resolve();
        else reject(e);
      };
      const fail = (why: string): FabricError =>
        new FabricError(
          FabricErrorCode.ServerStartFailed,
          `nats-server ${this.name} ${why}: ${this.log.slice(-3).join(' | ')}`,
          {
            details: { server: this.name, config: this.configPath },
          },
        );
      const timer = setTimeout(
        () => finish(fail(`not ready after ${NATS_SERVER_READY_MS_MAX} ms`)),
        NATS_SERVER_READY_MS_MAX,
      );
      child.once('error', (e) =>
        finish(fail(`could not start (${e.message}); is nats-server installed?`)),
      );
      child.once('exit', (code, sig) => finish(fail(`exited (${code ?? sig})`)));
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        buf += chunk;
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.log.push(line);
          if (this.log.length > NATS_SERVER_LOG_LINES_MAX) this.log.shift();
          if (line.includes('Server is ready')) finish();
          nl = buf.indexOf('\n');
        }
      });
    });
  }
}
