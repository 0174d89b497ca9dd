/**
 * The hub agent: knows its pods from their signed periodic summaries (a pod name is bound to
 * the key it first announced with), redirects tiles whose pod is full, draining or gone to a
 * sibling with room, and acknowledges the membership events pods buffered while cut off.
 */
import type { Clock, Logger, MembershipEvent, Subscription, Transport } from '../core/index.ts';
import {
  eventBatchSchema,
  type Podstat,
  podstatSchema,
  redirectRequestSchema,
  Subjects,
} from './messages.ts';
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
}

/** A hub's agent. */
export class HubAgent {
  readonly name: string;
  private readonly verifier: WireVerifier;
  private readonly pods = new Map<string, Podstat & { seenMs: number }>();
  private readonly subs: Subscription[] = [];
  private counters = { podstats: 0, redirects: 0, eventsReceived: 0 };

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
  }

  /** Unsubscribes. */
  stop(): void {
    for (const s of this.subs.splice(0)) s.unsubscribe();
  }

  /** Pods heard from, with their last summary. */
  knownPods(): (Podstat & { seenMs: number })[] {
    return [...this.pods.values()];
  }

  /** Counters, including wire rejections. */
  status(): Record<string, number> {
    return { pods: this.pods.size, ...this.counters, wireRejected: this.verifier.rejected };
  }

  /** Wire rejection counters by reason. */
  wireStats(): Record<string, number> {
    return this.verifier.stats();
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
    respond(encodeJson(best === undefined ? null : { pod: best.pod, url: best.url }));
  }
}
