/**
 * What every process the fabric supervises shares (nats-server, `genesis node`): its pid, whether
 * it still runs, kill with a signal, and a graceful stop (SIGTERM, then SIGKILL after a grace),
 * each resolving only once the process has exited.
 */
import type { ChildProcess } from 'node:child_process';

/** A supervised child process; subclasses spawn it and call {@link adopt}. */
export abstract class SupervisedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  /** @param stopGraceMs how long {@link stop} waits after SIGTERM before SIGKILL */
  protected constructor(private readonly stopGraceMs: number) {}

  /** Process id while running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** True while the process runs. */
  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** Takes charge of a freshly spawned process. */
  protected adopt(child: ChildProcess): void {
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Sends a signal (SIGKILL for crash tests) and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child?.kill(signal);
    await this.exited;
  }

  /** Stops gracefully: SIGTERM, then SIGKILL after the grace. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const t = setTimeout(() => this.child?.kill('SIGKILL'), this.stopGraceMs);
    this.child?.kill('SIGTERM');
    await this.exited;
    clearTimeout(t);
  }
}
