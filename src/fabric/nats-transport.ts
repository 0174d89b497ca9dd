/**
 * The NATS implementation of the core {@link Transport} contract, over `@nats-io/transport-node`.
 *
 * It is deliberately thin: subjects, wildcards, queue groups, headers and request/reply are
 * NATS' own (core/transport.ts was shaped after them), so the adapter only adds what the
 * contract promises beyond NATS: the same input validation as the in-process transport, a
 * bounded per-subscription queue with a visible drop policy (nats.js would buffer without
 * bound and only flag a slow consumer), handler errors counted instead of thrown, and NATS
 * errors mapped onto the stable TRANSPORT_* codes.
 */

import {
  connect,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription as NatsSubscription,
  NoRespondersError,
  headers as natsHeaders,
  RequestError,
  TimeoutError,
} from '@nats-io/transport-node';
import {
  DELIVERY_BATCH_MESSAGES_MAX,
  type Logger,
  type Message,
  type MessageHandler,
  type MessageHeaders,
  type PublishOptions,
  QueuedSubscription,
  type RequestOptions,
  type SubscribeOptions,
  type Subscription,
  silentLogger,
  type Transport,
  TransportError,
  TransportErrorCode,
  type TransportStats,
  validatePayload,
  validateRequest,
  validateSubject,
  validateSubscribe,
} from '../core/index.ts';

/** Publish subjects remembered as valid (a bounded cache; cleared when full). */
export const VALID_SUBJECTS_CACHED_MAX = 4_096;

/** Header keys NATS accepts: printable ASCII without ':' or whitespace (NATS ADR-4). */
const HEADER_KEY_RE = /^[!-9;-~]+$/;
/** Header values must not break the MIME-style framing. */
const HEADER_VALUE_BAD_RE = /[\r\n]/;

/** Options of {@link NatsTransport.connect}. */
export interface NatsTransportConnectOptions {
  /** One URL or several (`nats://127.0.0.1:4222`). */
  readonly servers: string | readonly string[];
  /** Connection name shown by the server's monitoring. */
  readonly name?: string;
  readonly logger?: Logger;
  /** Keep retrying forever when the server goes away (default true). */
  readonly reconnect?: boolean;
  /** Wait between reconnect attempts (default 250 ms). */
  readonly reconnectTimeWaitMs?: number;
  /** Keep trying the first connection until it succeeds (default false). */
  readonly waitOnFirstConnect?: boolean;
  /** Timeout of the first connection attempt (default 5 s). */
  readonly connectTimeoutMs?: number;
}

/** Connection events counted by the transport (reconnects are the interesting ones). */
export interface NatsConnectionStats {
  readonly disconnects: number;
  readonly reconnects: number;
  readonly server: string | undefined;
}

function toNatsHeaders(h: MessageHeaders | undefined): MsgHdrs | undefined {
  if (h === undefined) return undefined;
  const out = natsHeaders();
  for (const k in h) {
    const v = h[k] as string;
    if (!HEADER_KEY_RE.test(k) || HEADER_VALUE_BAD_RE.test(v)) {
      throw new TransportError(TransportErrorCode.HeadersInvalid, `invalid header "${k}"`, {
        details: { key: k },
      });
    }
    out.set(k, v);
  }
  return out;
}

function fromNatsHeaders(h: MsgHdrs | undefined): MessageHeaders | undefined {
  if (h === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, vs] of h) {
    // The contract carries one value per key; NATS allows repeats, keep the last.
    const v = vs[vs.length - 1];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** A queued subscription plus the NATS subscription feeding it. */
class NatsSub extends QueuedSubscription<Msg> {
  natsSub: NatsSubscription | undefined;
}

/** {@link Transport} over a NATS connection. */
export class NatsTransport implements Transport {
  readonly kind = 'nats';
  private readonly log: Logger;
  private readonly subs = new Set<NatsSub>();
  private readonly validSubjects = new Set<string>();
  private inlineThisTurn = 0;
  private readonly resetInline = (): void => {
    this.inlineThisTurn = 0;
  };
  private readonly ready: NatsSub[] = [];
  private readonly pendingRequests = new Set<(e: Error) => void>();
  private drainScheduled = false;
  private flushWaiters: (() => void)[] = [];
  private closed = false;
  private published = 0;
  private delivered = 0;
  private dropped = 0;
  private handlerErrors = 0;
  private disconnects = 0;
  private reconnects = 0;

  /** Wraps an open connection; the transport owns it from now on and closes it on close(). */
  constructor(
    readonly connection: NatsConnection,
    logger?: Logger,
  ) {
    this.log = logger ?? silentLogger();
    void this.watchStatus();
  }

  /**
   * Connects to NATS and returns the transport.
   * @throws {TransportError} `TRANSPORT_CLOSED` when no server answers.
   */
  static async connect(options: NatsTransportConnectOptions): Promise<NatsTransport> {
    const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
    try {
      const nc = await connect({
        servers,
        ...(options.name === undefined ? {} : { name: options.name }),
        maxReconnectAttempts: options.reconnect === false ? 0 : -1,
        reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
        waitOnFirstConnect: options.waitOnFirstConnect ?? false,
        timeout: options.connectTimeoutMs ?? 5_000,
        // Small control messages must not wait for Nagle-style batching in the client.
        pingInterval: 10_000,
      });
      return new NatsTransport(nc, options.logger);
    } catch (e) {
      throw new TransportError(
        TransportErrorCode.Closed,
        `cannot connect to NATS at ${servers.join(',')}: ${(e as Error).message}`,
        {
          cause: e,
          details: { servers },
        },
      );
    }
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): void {
    this.ensureOpen();
    // Subjects repeat (telemetry, heartbeats): validate each once, in a bounded cache.
    if (!this.validSubjects.has(subject)) {
      validateSubject(subject, false);
      if (this.validSubjects.size >= VALID_SUBJECTS_CACHED_MAX) this.validSubjects.clear();
      this.validSubjects.add(subject);
    }
    validatePayload(data, options.headers);
    if (options.reply !== undefined) validateSubject(options.reply, false);
    const h = toNatsHeaders(options.headers);
    if (h === undefined && options.reply === undefined) this.connection.publish(subject, data);
    else {
      this.connection.publish(subject, data, {
        ...(h === undefined ? {} : { headers: h }),
        ...(options.reply === undefined ? {} : { reply: options.reply }),
      });
    }
    this.published++;
  }

  subscribe(
    subject: string,
    handler: MessageHandler,
    options: SubscribeOptions = {},
  ): Subscription {
    this.ensureOpen();
    const pendingMax = validateSubscribe(subject, options);
    const sub = new NatsSub(
      subject,
      options.queue,
      handler,
      pendingMax,
      options.dropPolicy ?? 'drop-oldest',
      (s) => this.remove(s as NatsSub),
    );
    sub.natsSub = this.connection.subscribe(subject, {
      ...(options.queue === undefined ? {} : { queue: options.queue }),
      callback: (err, m) => {
        if (err !== null || sub.closed) return;
        // Fast path: an idle subscription gets the message at once (we are on the socket's
        // turn, never the publisher's stack), within a per-turn budget; beyond it, messages
        // queue under the bound and drop policy and are drained on later turns.
        if (
          sub.pending === 0 &&
          !sub.scheduled &&
          this.inlineThisTurn < DELIVERY_BATCH_MESSAGES_MAX
        ) {
          if (this.inlineThisTurn++ === 0) setImmediate(this.resetInline);
          sub.delivered++;
          this.delivered++;
          this.invoke(sub, m);
          return;
        }
        this.dropped += sub.enqueue(m);
        if (!sub.scheduled) {
          sub.scheduled = true;
          this.ready.push(sub);
        }
        if (!this.drainScheduled) {
          this.drainScheduled = true;
          setImmediate(this.drain);
        }
      },
    });
    this.subs.add(sub);
    return sub;
  }

  request(subject: string, data: Uint8Array, options: RequestOptions = {}): Promise<Message> {
    this.ensureOpen();
    const timeoutMs = validateRequest(subject, data, options);
    const h = toNatsHeaders(options.headers);
    this.published++;
    // One promise per request (no race against a close promise): close() rejects pending
    // requests through the registered callbacks.
    return new Promise<Message>((resolve, reject) => {
      const onClose = (e: Error): void => reject(e);
      this.pendingRequests.add(onClose);
      this.connection
        .request(subject, data, { timeout: timeoutMs, ...(h === undefined ? {} : { headers: h }) })
        .then(
          (reply) => {
            this.pendingRequests.delete(onClose);
            resolve(this.wrap(reply));
          },
          (e: unknown) => {
            this.pendingRequests.delete(onClose);
            reject(this.mapRequestError(e, subject, timeoutMs));
          },
        );
    });
  }

  async flush(): Promise<void> {
    if (this.closed) return;
    try {
      await this.connection.flush();
    } catch (e) {
      if (this.closed) return;
      throw new TransportError(TransportErrorCode.Closed, `flush failed: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (this.ready.length === 0 && !this.drainScheduled) return;
    await new Promise<void>((resolve) => this.flushWaiters.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new TransportError(TransportErrorCode.Closed, 'transport closed');
    for (const fail of [...this.pendingRequests]) fail(err);
    this.pendingRequests.clear();
    for (const s of this.subs) {
      s.closed = true;
      s.clear();
    }
    this.subs.clear();
    this.ready.length = 0;
    for (const w of this.flushWaiters.splice(0)) w();
    try {
      await this.connection.close();
    } catch (e) {
      this.log.debug({ err: String(e) }, 'nats close failed');
    }
  }

  stats(): TransportStats {
    let pending = 0;
    for (const s of this.subs) pending += s.pending;
    return {
      published: this.published,
      delivered: this.delivered,
      dropped: this.dropped,
      handlerErrors: this.handlerErrors,
      subscriptions: this.subs.size,
      pending,
    };
  }

  /** Disconnects and reconnects seen so far, and the server currently connected. */
  connectionStats(): NatsConnectionStats {
    return {
      disconnects: this.disconnects,
      reconnects: this.reconnects,
      server: this.connection.getServer() || undefined,
    };
  }

  /** True once {@link close} was called or the connection closed for good. */
  get isClosed(): boolean {
    return this.closed || this.connection.isClosed();
  }

  /** @internal removes a subscription. */
  private remove(sub: NatsSub): void {
    if (sub.closed) return;
    sub.closed = true;
    sub.clear();
    this.subs.delete(sub);
    try {
      sub.natsSub?.unsubscribe();
    } catch {
      // Unsubscribing on a closed connection is a no-op for us.
    }
  }

  private ensureOpen(): void {
    if (this.closed || this.connection.isClosed())
      throw new TransportError(TransportErrorCode.Closed, 'transport closed');
  }

  /** Hands queued messages to handlers, a bounded batch per subscription per turn. */
  private readonly drain = (): void => {
    this.drainScheduled = false;
    const batch = this.ready.splice(0);
    for (const sub of batch) {
      sub.scheduled = false;
      if (sub.closed) continue;
      for (let n = 0; n < DELIVERY_BATCH_MESSAGES_MAX; n++) {
        const m = sub.dequeue();
        if (m === undefined) break;
        sub.delivered++;
        this.delivered++;
        this.invoke(sub, m);
        if (sub.closed) break;
      }
      if (!sub.closed && sub.pending > 0 && !sub.scheduled) {
        sub.scheduled = true;
        this.ready.push(sub);
      }
    }
    if (this.ready.length > 0) {
      this.drainScheduled = true;
      setImmediate(this.drain);
    } else if (this.flushWaiters.length > 0) {
      for (const w of this.flushWaiters.splice(0)) w();
    }
  };

  private invoke(sub: NatsSub, m: Msg): void {
    try {
      const r = sub.handler(this.wrap(m));
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).catch((e: unknown) => this.onHandlerError(sub, e));
      }
    } catch (e) {
      this.onHandlerError(sub, e);
    }
  }

  private wrap(m: Msg): Message {
    const transport = this;
    let headers: MessageHeaders | undefined | null = null;
    return {
      subject: m.subject,
      data: m.data,
      // Headers are decoded on first use: most fabric traffic never reads them.
      get headers(): MessageHeaders | undefined {
        if (headers === null) headers = fromNatsHeaders(m.headers);
        return headers;
      },
      reply: m.reply === '' ? undefined : m.reply,
      respond(data: Uint8Array, options?: { headers?: MessageHeaders }): boolean {
        if (m.reply === undefined || m.reply === '' || transport.isClosed) return false;
        transport.publish(
          m.reply,
          data,
          options?.headers === undefined ? {} : { headers: options.headers },
        );
        return true;
      },
    };
  }

  private onHandlerError(sub: NatsSub, e: unknown): void {
    this.handlerErrors++;
    this.log.warn(
      { subject: sub.subject, err: e instanceof Error ? e.message : String(e) },
      'subscription handler failed',
    );
  }

  private mapRequestError(e: unknown, subject: string, timeoutMs: number): Error {
    if (e instanceof TransportError) return e;
    const cause = e instanceof RequestError && e.cause !== undefined ? e.cause : e;
    if (cause instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) {
      return new TransportError(TransportErrorCode.NoResponders, `no responders on "${subject}"`, {
        cause: e,
        details: { subject },
      });
    }
    if (cause instanceof TimeoutError || e instanceof TimeoutError) {
      return new TransportError(
        TransportErrorCode.Timeout,
        `request to "${subject}" timed out after ${timeoutMs} ms`,
        {
          cause: e,
          details: { subject, timeoutMs },
        },
      );
    }
    if (this.closed || this.connection.isClosed())
      return new TransportError(TransportErrorCode.Closed, 'transport closed', { cause: e });
    return e instanceof Error ? e : new Error(String(e));
  }

  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.connection.status()) {
        if (s.type === 'disconnect') this.disconnects++;
        else if (s.type === 'reconnect') this.reconnects++;
      }
    } catch {
      // The status iterator ends with the connection.
    }
  }
}
