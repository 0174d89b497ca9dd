/**
 * The hub agent: knows its pods from their signed periodic summaries (a pod name is bound to
 * the key it first announced with), redirects tiles whose pod is full, draining or gone to a
 * sibling with room, and acknowledges the membership events pods buffered while cut off. With a
 * {@link RegionDirectory} it also publishes its pods to its region's directory every renew
 * period and, when none of its own pods has room, redirects to a pod of a sibling hub.
 */
import type {
  Clock,
  Logger,
  MembershipEvent,
  Subscription,
  TimerHandle,
  Transport,
} from '../core/index.ts';
import {
  eventBatchSchema,
  type Podstat,
  podstatSchema,
  redirectRequestSchema,
  Subjects,
} from './messages.ts';
import type { RegionDirectory } from './region-directory.ts';
import { decodeJson, encodeJson, WireVerifier } from './wire.ts';

/** Pod summaries older than this many renew periods do not count for redirects. */
export const PODSTAT_FRESH_PERIODS = 3;

/** Options of a {@link HubAgent}. */
export interface HubAgentInit {
  readonly name: string;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Renew period of the pods below (for freshness of their summaries). */
  readonly renewMs: number;
  /** Called with every event batch a pod sends up. */
  readonly onEvents?: (pod: string, events: readonly MembershipEvent[]) => void;
  /** The region's directory (JetStream KV in the region's domain); absent: own pods only. */
  readonly region?: RegionDirectory;
}

/** A hub's agent. */
export class HubAgent {
  readonly name: string;
  private readonly verifier: WireVerifier;
  private readonly pods = new Map<string, Podstat & { seenMs: number }>();
  private readonly subs: Subscription[] = [];
  private counters = { podstats: 0, redirects: 0, regionRedirects: 0, eventsReceived: 0 };
  private regionTimer: TimerHandle | undefined;
  private regionTick: Promise<void> | undefined;

  constructor(private readonly init: HubAgentInit) {
    this.name = init.name;
    this.verifier = new WireVerifier(init.clock);
  }

  /** Subscribes to pod summaries, events and redirect requests. */
  start(): void {
    const t = this.init.transport;
    this.subs.push(
      t.subscribe(Subjects.podstat(this.name), (m) => this.onPodstat(m.data), {
        pendingMessagesMax: 4096,
        dropPolicy: 'drop-oldest',
      }),
      t.subscribe(Subjects.events(this.name), (m) => {
        const r = this.verifier.open(m.data, {
          type: 'events',
          body: eventBatchSchema,
          allowUnbound: true,
        });
        if (
          !r.ok ||
          !this.isOwnPod(r.envelope.from) ||
          r.envelope.body.pod !== r.envelope.from ||
          !this.keyMatches(r.envelope.from, r.envelope.key)
        ) {
          m.respond(encodeJson({ ok: false, error: 'rejected' }));
          return;
        }
        this.counters.eventsReceived += r.envelope.body.events.length;
        this.init.onEvents?.(r.envelope.from, r.envelope.body.events);
        m.respond(encodeJson({ ok: true }));
      }),
      t.subscribe(Subjects.redirect(this.name), (m) =>
        this.onRedirect(m.data, (d) => m.respond(d)),
      ),
      t.subscribe(Subjects.redirectAny, (m) => this.onRedirect(m.data, (d) => m.respond(d)), {
        queue: 'hubs',
      }),
    );
    if (this.init.region !== undefined) {
      this.regionTimer = this.init.clock.setInterval(() => this.publishRegion(), this.init.renewMs);
      this.publishRegion();
    }
  }

  /** Unsubscribes and stops publishing to the region. */
  stop(): void {
    for (const s of this.subs.splice(0)) s.unsubscribe();
    if (this.regionTimer !== undefined) this.init.clock.clearTimer(this.regionTimer);
    this.regionTimer = undefined;
  }

  /** Resolves when the region publish in flight (if any) is done. */
  async settled(): Promise<void> {
    await this.regionTick;
  }

  /** Pods heard from, with their last summary. */
  knownPods(): (Podstat & { seenMs: number })[] {
    return [...this.pods.values()];
  }

  /** Counters, including wire rejections and the region directory's. */
  status(): Record<string, number> {
    const r = this.init.region;
    return {
      pods: this.pods.size,
      ...this.counters,
      wireRejected: this.verifier.rejected,
      ...(r === undefined
        ? {}
        : {
            regionConnected: r.connected ? 1 : 0,
            regionPublished: r.counters.published,
            regionFailures: r.counters.failures,
            regionHubs: r.hubs().filter((h) => h.fresh).length,
          }),
    };
  }

  /** Wire rejection counters by reason. */
  wireStats(): Record<string, number> {
    return this.verifier.stats();
  }

  /** Fresh pod summaries, as the region directory lists them. */
  private freshPods(): Podstat[] {
    const now = this.init.clock.now();
    return [...this.pods.values()].filter(
      (p) => now - p.seenMs <= PODSTAT_FRESH_PERIODS * this.init.renewMs,
    );
  }

  private publishRegion(): void {
    const region = this.init.region;
    if (region === undefined || this.regionTick !== undefined) return;
    const pods = this.freshPods().map((p) => ({
      pod: p.pod,
      url: p.url,
      tiles: p.tiles,
      tilesMax: p.tilesMax,
    }));
    this.regionTick = region.tick(pods).finally(() => {
      this.regionTick = undefined;
    });
  }

  private isOwnPod(pod: string): boolean {
    return pod.startsWith(`${this.name}.`) && !pod.slice(this.name.length + 1).includes('.');
  }

  private keyMatches(pod: string, key: string): boolean {
    const bound = this.verifier.boundKey(pod);
    return bound === undefined || bound === key;
  }

  private onPodstat(data: Uint8Array): void {
    const r = this.verifier.open(data, {
      type: 'podstat',
      body: podstatSchema,
      allowUnbound: true,
    });
    if (!r.ok) return;
    const { from, key, body } = r.envelope;
    if (!this.isOwnPod(from) || body.pod !== from) return;
    // Trust on first use: the first key a pod announces with is the only one it may use later.
    if (this.verifier.boundKey(from) === undefined) this.verifier.bind(from, key);
    this.counters.podstats++;
    this.pods.set(from, { ...body, seenMs: this.init.clock.now() });
  }

  private onRedirect(data: Uint8Array, respond: (d: Uint8Array) => boolean): void {
    const req = decodeJson(data, redirectRequestSchema);
    const exclude = new Set(req?.exclude ?? []);
    const now = this.init.clock.now();
    let best: Podstat | undefined;
    for (const p of this.pods.values()) {
      if (
        exclude.has(p.pod) ||
        now - p.seenMs > PODSTAT_FRESH_PERIODS * this.init.renewMs ||
        p.tiles >= p.tilesMax
      )
        continue;
      if (
        best === undefined ||
        p.tiles / Math.max(1, p.tilesMax) < best.tiles / Math.max(1, best.tilesMax)
      )
        best = p;
    }
    this.counters.redirects++;
    if (best === undefined) {
      // None of ours has room: a sibling hub's pod from the region directory, if any.
      const sibling = this.init.region?.siblingPod(exclude);
      if (sibling !== undefined) this.counters.regionRedirects++;
      respond(encodeJson(sibling ?? null));
      return;
    }
    respond(encodeJson({ pod: best.pod, url: best.url }));
  }
}
