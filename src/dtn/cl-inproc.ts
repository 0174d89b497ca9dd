/**
 * The in-process convergence layer for simulations: links between agents in one process, each
 * with a one-way light time, a data rate and optional contact windows, all timed by the injected
 * clock. With a VirtualClock, a Mars link with minutes of light time runs in milliseconds.
 */
import type { Clock, TimerHandle } from '../core/index.ts';
import type { BundleAgent, ConvergenceLink } from './agent.ts';
import { DtnError, DtnErrorCode } from './errors.ts';

/** A window during which a link is up, Unix ms. */
export interface ContactWindow {
  readonly startMs: number;
  readonly endMs: number;
}

/** Properties of a simulated link. */
export interface InprocLinkSpec {
  readonly owltMs: number;
  readonly rateBitsPerSec: number;
  /** Windows when the link is up; omitted: always up. */
  readonly windows?: readonly ContactWindow[];
  readonly maxBundleBytes?: number;
}

/** Counters of an in-process network. */
export interface InprocNetworkStats {
  /** Bundles sent and not yet arrived (on the wire, inside the light-time delay). */
  onWire: number;
  sent: number;
  arrived: number;
  bytes: number;
}

class InprocLink implements ConvergenceLink {
  readonly maxBundleBytes?: number;
  private busyUntilMs = 0;

  constructor(
    readonly peer: string,
    private readonly spec: InprocLinkSpec,
    private readonly clock: Clock,
    private readonly deliver: (bytes: Uint8Array) => void,
    private readonly stats: InprocNetworkStats,
  ) {
    if (spec.maxBundleBytes !== undefined) this.maxBundleBytes = spec.maxBundleBytes;
  }

  isUp(): boolean {
    const w = this.spec.windows;
    if (w === undefined) return true;
    const now = this.clock.now();
    return w.some((x) => now >= x.startMs && now < x.endMs);
  }

  send(bytes: Uint8Array): Promise<void> {
    if (!this.isUp())
      return Promise.reject(new DtnError(DtnErrorCode.Agent, `link to ${this.peer} is down`));
    // Serialise transmissions: each starts when the previous one has left the antenna.
    const now = this.clock.now();
    const start = Math.max(now, this.busyUntilMs);
    const txMs = (bytes.length * 8 * 1000) / this.spec.rateBitsPerSec;
    this.busyUntilMs = start + txMs;
    const copy = bytes.slice();
    this.stats.onWire++;
    this.stats.sent++;
    this.stats.bytes += bytes.length;
    this.clock.setTimeout(
      () => {
        this.stats.onWire--;
        this.stats.arrived++;
        this.deliver(copy);
      },
      start - now + txMs + this.spec.owltMs,
    );
    return Promise.resolve();
  }
}

/** A set of agents joined by simulated links. */
export class InprocNetwork {
  readonly stats: InprocNetworkStats = { onWire: 0, sent: 0, arrived: 0, bytes: 0 };
  private readonly timers: TimerHandle[] = [];

  constructor(private readonly clock: Clock) {}

  /** Joins two agents with a pair of links of the same spec. */
  connect(a: BundleAgent, b: BundleAgent, spec: InprocLinkSpec): void {
    this.connectOneWay(a, b, spec);
    this.connectOneWay(b, a, spec);
  }

  /** Adds a link from `a` to `b` only. */
  connectOneWay(a: BundleAgent, b: BundleAgent, spec: InprocLinkSpec): void {
    a.addLink(new InprocLink(b.nodeKey, spec, this.clock, (bytes) => b.receive(bytes), this.stats));
    // Wake the sender at each window start so queued bundles leave as the contact begins.
    const now = this.clock.now();
    for (const w of spec.windows ?? []) {
      if (w.startMs >= now)
        this.timers.push(this.clock.setTimeout(() => a.linkStateChanged(), w.startMs - now));
    }
  }

  /** Cancels pending window timers. */
  close(): void {
    for (const t of this.timers.splice(0)) this.clock.clearTimer(t);
  }
}
