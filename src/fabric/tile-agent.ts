/**
 * The tile agent: joins the pod behind the NATS server it was pointed at (the pod's name is
 * the server's `server_name`, so the URL is the only configuration), renews its lease, answers
 * direct and indirect probes, and runs the instances a controller assigns it through a
 * {@link WorkloadRunner}. A full or draining pod redirects it to a sibling; a pod whose agent
 * is gone is bypassed through any hub's redirect service.
 */
import { z } from 'zod';
import type {
  Clock,
  Logger,
  Message,
  Rng,
  Subscription,
  TimerHandle,
  Transport,
} from '../core/index.ts';
import { isGenesisError, TransportErrorCode } from '../core/index.ts';
import { FabricError, FabricErrorCode } from './errors.ts';
import { CONTROL_REQUEST_TIMEOUT_MS } from './limits.ts';
import {
  assignBodySchema,
  type Capacity,
  INSTANCES_PER_TILE_MAX,
  type InstanceSpec,
  type JoinReply,
  joinReplySchema,
  type LeaseConfig,
  pongBodySchema,
  probeRequestSchema,
  redirectReplySchema,
  Subjects,
  unassignBodySchema,
} from './messages.ts';
import { decodeJson, encodeJson, type KeyPair, WireSigner, WireVerifier } from './wire.ts';

/** Joins attempted before a tile gives up (each redirect or retry counts). */
export const JOIN_ATTEMPTS_MAX = 20;

/**
 * Where placed instances run. The kernel layer's domains plug in here; until src/kernel
 * exports a runtime, {@link RecordingRunner} keeps the instance table (the seam).
 */
export interface WorkloadRunner {
  readonly kind: string;
  start(instance: InstanceSpec): Promise<void>;
  stop(id: string): Promise<void>;
  running(): string[];
}

/** A runner that records instances without executing them (the kernel seam). */
export class RecordingRunner implements WorkloadRunner {
  readonly kind = 'recording';
  private readonly instances = new Map<string, InstanceSpec>();

  async start(instance: InstanceSpec): Promise<void> {
    if (this.instances.size >= INSTANCES_PER_TILE_MAX && !this.instances.has(instance.id)) {
      throw new FabricError(
        FabricErrorCode.Unschedulable,
        `tile runs INSTANCES_PER_TILE_MAX (${INSTANCES_PER_TILE_MAX}) instances`,
      );
    }
    this.instances.set(instance.id, instance);
  }

  async stop(id: string): Promise<void> {
    this.instances.delete(id);
  }

  running(): string[] {
    return [...this.instances.keys()];
  }
}

/** Result of a (re)connection after a redirect. */
export interface Reconnected {
  readonly transport: Transport;
  readonly pod: string;
}

/** Options of a {@link TileAgent}. */
export interface TileAgentInit {
  readonly transport: Transport;
  /** The pod behind the server we reached. */
  readonly pod: string;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  readonly keys: KeyPair;
  readonly capacity: Capacity;
  readonly labels?: Readonly<Record<string, string>>;
  /** A name to ask for (the pod decides). */
  readonly wantName?: string;
  readonly runner?: WorkloadRunner;
  /** Connects to another pod's server after a redirect; absent: same bus, other pod. */
  readonly reconnect?: (url: string, pod: string) => Promise<Reconnected>;
  /** Called when admitted. */
  readonly onAdmitted?: (reply: Extract<JoinReply, { ok: true }>) => void;
}

/** A tile's agent. */
export class TileAgent {
  private transport: Transport;
  private pod: string;
  private readonly signer: WireSigner;
  private readonly verifier: WireVerifier;
  private readonly runner: WorkloadRunner;
  private readonly subs: Subscription[] = [];
  private renewTimer: TimerHandle | undefined;
  private lease: LeaseConfig | undefined;
  private assigned: string | undefined;
  private running = false;
  private counters = {
    heartbeats: 0,
    assigns: 0,
    unassigns: 0,
    redirects: 0,
    pings: 0,
    probesRelayed: 0,
  };

  constructor(private readonly init: TileAgentInit) {
    this.transport = init.transport;
    this.pod = init.pod;
    this.signer = new WireSigner(init.keys, init.clock);
    this.verifier = new WireVerifier(init.clock);
    this.runner = init.runner ?? new RecordingRunner();
  }

  /** The name the pod assigned (after start). */
  get name(): string | undefined {
    return this.assigned;
  }

  /** The pod that admitted this tile. */
  get podName(): string {
    return this.pod;
  }

  /** The current transport (changes after a redirect). */
  get currentTransport(): Transport {
    return this.transport;
  }

  /**
   * Joins a pod (following redirects) and starts renewing the lease.
   * @throws {FabricError} FABRIC_JOIN_FAILED when no pod admits the tile.
   */
  async start(): Promise<void> {
    if (this.running) return;
    const visited: string[] = [];
    for (let attempt = 0; attempt < JOIN_ATTEMPTS_MAX; attempt++) {
      const reply = await this.tryJoin();
      if (reply?.ok === true) {
        this.admitted(reply);
        return;
      }
      visited.push(this.pod);
      const next = reply?.ok === false ? reply.redirect : await this.askAnyHub(visited);
      if (next === undefined || next === null) {
        await this.init.clock.sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 4)));
        continue;
      }
      this.counters.redirects++;
      this.init.logger.info({ from: this.pod, to: next.pod }, 'redirected to a sibling pod');
      if (this.init.reconnect !== undefined && next.url !== '') {
        const r = await this.init.reconnect(next.url, next.pod);
        this.transport = r.transport;
        this.pod = r.pod;
      } else this.pod = next.pod;
    }
    throw new FabricError(
      FabricErrorCode.JoinFailed,
      `no pod admitted this tile after ${JOIN_ATTEMPTS_MAX} attempts`,
      { details: { visited } },
    );
  }

  /** Stops renewing and stops every instance. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.renewTimer) this.init.clock.clearTimer(this.renewTimer);
    for (const s of this.subs.splice(0)) s.unsubscribe();
    for (const id of this.runner.running()) await this.runner.stop(id);
  }

  /** Instance ids running here. */
  instances(): string[] {
    return this.runner.running();
  }

  /** Counters for status lines. */
  status(): Record<string, number | string> {
    return {
      name: this.assigned ?? '',
      pod: this.pod,
      instances: this.runner.running().length,
      ...this.counters,
    };
  }

  private async tryJoin(): Promise<JoinReply | undefined> {
    const body = {
      capacity: this.init.capacity,
      labels: { ...(this.init.labels ?? {}) },
      ...(this.init.wantName === undefined ? {} : { wantName: this.init.wantName }),
    };
    try {
      const reply = await this.transport.request(
        Subjects.join(this.pod),
        this.signer.seal('join', body),
        { timeoutMs: CONTROL_REQUEST_TIMEOUT_MS },
      );
      return decodeJson(reply.data, joinReplySchema);
    } catch (e) {
      if (
        isGenesisError(e, TransportErrorCode.NoResponders) ||
        isGenesisError(e, TransportErrorCode.Timeout)
      )
        return undefined;
      throw e;
    }
  }

  private async askAnyHub(
    exclude: string[],
  ): Promise<{ pod: string; url: string } | null | undefined> {
    try {
      const reply = await this.transport.request(
        Subjects.redirectAny,
        encodeJson({ exclude: exclude.slice(-64) }),
        { timeoutMs: CONTROL_REQUEST_TIMEOUT_MS },
      );
      return decodeJson(reply.data, redirectReplySchema);
    } catch {
      return undefined;
    }
  }

  private admitted(reply: Extract<JoinReply, { ok: true }>): void {
    this.assigned = reply.name;
    this.signer.name = reply.name;
    this.lease = reply.config;
    this.verifier.bind(reply.pod, reply.podKey);
    const t = this.transport;
    this.subs.push(
      t.subscribe(Subjects.ping(reply.name), (m) => this.onPing(m)),
      t.subscribe(Subjects.probe(reply.name), (m) => this.onProbe(m)),
      t.subscribe(Subjects.assign(reply.name), (m) => this.onAssign(m), {
        pendingMessagesMax: 4096,
        dropPolicy: 'drop-newest',
      }),
      t.subscribe(Subjects.unassign(reply.name), (m) => this.onUnassign(m), {
        pendingMessagesMax: 4096,
        dropPolicy: 'drop-newest',
      }),
    );
    this.running = true;
    this.renew();
    this.renewTimer = this.init.clock.setInterval(() => this.renew(), reply.config.renewMs);
    this.init.onAdmitted?.(reply);
  }

  private renew(): void {
    if (!this.running) return;
    try {
      this.transport.publish(
        Subjects.heartbeat(this.pod),
        this.signer.seal('hb', { instances: this.runner.running() }),
      );
      this.counters.heartbeats++;
    } catch (e) {
      // While the server is away the client buffers or fails; the lease logic tolerates gaps.
      this.init.logger.debug({ err: String(e) }, 'lease renewal failed');
    }
  }

  private onPing(m: Message): void {
    const req = decodeJson(m.data, pongBodySchema);
    if (req === undefined) return;
    this.counters.pings++;
    m.respond(this.signer.seal('pong', { nonce: req.nonce }));
  }

  private async onProbe(m: Message): Promise<void> {
    const req = decodeJson(m.data, probeRequestSchema);
    if (req === undefined || this.lease === undefined) return;
    this.counters.probesRelayed++;
    let reachable = false;
    try {
      const reply = await this.transport.request(
        Subjects.ping(req.target),
        encodeJson({ nonce: req.nonce }),
        { timeoutMs: this.lease.probeTimeoutMs },
      );
      const body = decodeJson(reply.data.subarray(64), pongEnvelopeSchemaLoose);
      reachable = body !== undefined && body.from === req.target && body.body.nonce === req.nonce;
    } catch {
      reachable = false;
    }
    m.respond(this.signer.seal('probe-ack', { target: req.target, nonce: req.nonce, reachable }));
  }

  private async onAssign(m: Message): Promise<void> {
    const req = decodeJson(m.data, assignBodySchema);
    if (req === undefined) {
      m.respond(encodeJson({ ok: false, error: 'malformed' }));
      return;
    }
    try {
      await this.runner.start(req.instance);
      this.counters.assigns++;
      this.init.logger.info(
        { instance: req.instance.id, module: req.instance.module, runner: this.runner.kind },
        'instance started',
      );
      m.respond(encodeJson({ ok: true }));
      // Report at once so the pod's inventory reflects the new instance before the next lease.
      this.renew();
    } catch (e) {
      this.init.logger.warn(
        { instance: req.instance.id, err: String((e as Error).message) },
        'instance refused',
      );
      m.respond(encodeJson({ ok: false, error: String((e as Error).message).slice(0, 200) }));
    }
  }

  private async onUnassign(m: Message): Promise<void> {
    const req = decodeJson(m.data, unassignBodySchema);
    if (req === undefined) {
      m.respond(encodeJson({ ok: false, error: 'malformed' }));
      return;
    }
    await this.runner.stop(req.id);
    this.counters.unassigns++;
    this.init.logger.info({ instance: req.id, runner: this.runner.kind }, 'instance stopped');
    m.respond(encodeJson({ ok: true }));
    this.renew();
  }
}

/** The helper only relays reachability; the pod verifies the helper's own signature. */
const pongEnvelopeSchemaLoose = z.object({ from: z.string(), body: pongBodySchema });
