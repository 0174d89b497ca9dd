/**
 * The in-process transport: the embedded default of `genesis up` and of simulations. Subjects
 * are matched through a token trie (`*` and `>` as in NATS); each subscription owns a bounded
 * ring queue drained on a later event-loop turn, so publishers never run subscriber code
 * synchronously and a slow subscriber only ever loses its own messages, visibly.
 */
import { QueuedSubscription } from './bounded-queue.ts';
import type { Clock } from './clock.ts';
import { SystemClock } from './clock.ts';
import { assert } from './errors.ts';
import { DELIVERY_BATCH_MESSAGES_MAX } from './limits.ts';
import type { Logger } from './logger.ts';
import { silentLogger } from './logger.ts';
import {
  type Message,
  type MessageHandler,
  type MessageHeaders,
  type PublishOptions,
  type RequestOptions,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  TransportError,
  TransportErrorCode,
  type TransportStats,
  validatePayload,
  validateRequest,
  validateSubject,
  validateSubscribe,
} from './transport.ts';

interface Envelope {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MessageHeaders | undefined;
  readonly reply: string | undefined;
}

interface TrieNode {
  readonly children: Map<string, TrieNode>;
  readonly subs: Set<InprocSubscription>;
}

function newNode(): TrieNode {
  return { children: new Map(), subs: new Set() };
}

/** Components of {@link InprocTransport}; all optional. */
export interface InprocTransportInit {
  readonly clock?: Clock;
  readonly logger?: Logger;
}

type InprocSubscription = QueuedSubscription<Envelope>;

/** In-process implementation of {@link Transport}. */
export class InprocTransport implements Transport {
  readonly kind = 'inproc';
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly root = newNode();
  private readonly ready = new Set<InprocSubscription>();
  private readonly queueCursor = new Map<string, number>();
  private readonly pendingRequests = new Set<(e: Error) => void>();
  private drainScheduled = false;
  private closed = false;
  private inboxSeq = 0;
  private subCount = 0;
  private published = 0;
  private delivered = 0;
  private dropped = 0;
  private handlerErrors = 0;
  private flushWaiters: (() => void)[] = [];

  constructor(init: InprocTransportInit = {}) {
    this.clock = init.clock ?? new SystemClock();
    this.log = init.logger ?? silentLogger();
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): void {
    this.ensureOpen();
    validateSubject(subject, false);
    validatePayload(data, options.headers);
    if (options.reply !== undefined) validateSubject(options.reply, false);
    this.published++;
    this.route({ subject, data, headers: options.headers, reply: options.reply });
  }

  subscribe(
    subject: string,
    handler: MessageHandler,
    options: SubscribeOptions = {},
  ): Subscription {
    this.ensureOpen();
    const pendingMax = validateSubscribe(subject, options);
    const sub: InprocSubscription = new QueuedSubscription(
      subject,
      options.queue,
      handler,
      pendingMax,
      options.dropPolicy ?? 'drop-oldest',
      (s) => this.remove(s),
    );
    let node = this.root;
    for (const token of subject.split('.')) {
      let next = node.children.get(token);
      if (next === undefined) {
        next = newNode();
        node.children.set(token, next);
      }
      node = next;
    }
    node.subs.add(sub);
    this.subCount++;
    return sub;
  }

  async request(subject: string, data: Uint8Array, options: RequestOptions = {}): Promise<Message> {
    this.ensureOpen();
    const timeoutMs = validateRequest(subject, data, options);
    const inbox = `_INBOX.${++this.inboxSeq}`;
    return new Promise<Message>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        sub.unsubscribe();
        this.clock.clearTimer(timer);
        this.pendingRequests.delete(onClose);
        fn();
      };
      const onClose = (e: Error): void => settle(() => reject(e));
      const sub = this.subscribe(inbox, (msg) => settle(() => resolve(msg)), {
        pendingMessagesMax: 1,
      });
      const timer = this.clock.setTimeout(
        () =>
          settle(() =>
            reject(
              new TransportError(
                TransportErrorCode.Timeout,
                `request to "${subject}" timed out after ${timeoutMs} ms`,
                { details: { subject, timeoutMs } },
              ),
            ),
          ),
        timeoutMs,
      );
      this.pendingRequests.add(onClose);
      this.published++;
      const routed = this.route({ subject, data, headers: options.headers, reply: inbox });
      if (routed === 0) {
        settle(() =>
          reject(
            new TransportError(TransportErrorCode.NoResponders, `no responders on "${subject}"`, {
              details: { subject },
            }),
          ),
        );
      }
    });
  }

  async flush(): Promise<void> {
    if (this.ready.size === 0) return;
    await new Promise<void>((resolve) => this.flushWaiters.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fail of [...this.pendingRequests])
      fail(new TransportError(TransportErrorCode.Closed, 'transport closed'));
    this.pendingRequests.clear();
    this.ready.clear();
    this.root.children.clear();
    this.root.subs.clear();
    this.subCount = 0;
    for (const w of this.flushWaiters.splice(0)) w();
  }

  stats(): TransportStats {
    let pending = 0;
    for (const s of this.ready) pending += s.pending;
    return {
      published: this.published,
      delivered: this.delivered,
      dropped: this.dropped,
      handlerErrors: this.handlerErrors,
      subscriptions: this.subCount,
      pending,
    };
  }

  /** Removes a subscription from the trie. */
  private remove(sub: InprocSubscription): void {
    if (sub.closed) return;
    sub.closed = true;
    sub.clear();
    this.ready.delete(sub);
    const tokens = sub.subject.split('.');
    const path: TrieNode[] = [this.root];
    let node: TrieNode | undefined = this.root;
    for (const t of tokens) {
      node = node.children.get(t);
      if (node === undefined) return;
      path.push(node);
    }
    if (node.subs.delete(sub)) this.subCount--;
    // Prune empty branches so churn of request inboxes does not grow the trie.
    for (let i = tokens.length; i > 0; i--) {
      const n = path[i] as TrieNode;
      if (n.subs.size > 0 || n.children.size > 0) break;
      (path[i - 1] as TrieNode).children.delete(tokens[i - 1] as string);
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new TransportError(TransportErrorCode.Closed, 'transport closed');
  }

  /** Routes one message to every matching plain subscription and one member per queue group. */
  private route(env: Envelope): number {
    const matches: InprocSubscription[] = [];
    this.collect(this.root, env.subject.split('.'), 0, matches);
    if (matches.length === 0) return 0;
    let groups: Map<string, InprocSubscription[]> | undefined;
    let routed = 0;
    for (const sub of matches) {
      if (sub.queue === undefined) {
        this.deliverTo(sub, env);
        routed++;
      } else {
        groups ??= new Map();
        const key = `${sub.queue}\u0000${sub.subject}`;
        const members = groups.get(key);
        if (members === undefined) groups.set(key, [sub]);
        else members.push(sub);
      }
    }
    if (groups !== undefined) {
      for (const [key, members] of groups) {
        // Round-robin keeps queue-group delivery deterministic for simulations.
        const cursor = this.queueCursor.get(key) ?? 0;
        this.queueCursor.set(key, cursor + 1);
        this.deliverTo(members[cursor % members.length] as InprocSubscription, env);
        routed++;
      }
    }
    return routed;
  }

  private collect(node: TrieNode, tokens: string[], i: number, out: InprocSubscription[]): void {
    if (i === tokens.length) {
      for (const s of node.subs) out.push(s);
      return;
    }
    const full = node.children.get('>');
    if (full !== undefined) for (const s of full.subs) out.push(s);
    const exact = node.children.get(tokens[i] as string);
    if (exact !== undefined) this.collect(exact, tokens, i + 1, out);
    const star = node.children.get('*');
    if (star !== undefined) this.collect(star, tokens, i + 1, out);
  }

  private deliverTo(sub: InprocSubscription, env: Envelope): void {
    this.dropped += sub.enqueue(env);
    if (!sub.scheduled) {
      sub.scheduled = true;
      this.ready.add(sub);
    }
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.drainScheduled = false;
    const batch = [...this.ready];
    this.ready.clear();
    for (const sub of batch) {
      sub.scheduled = false;
      if (sub.closed) continue;
      for (let n = 0; n < DELIVERY_BATCH_MESSAGES_MAX; n++) {
        const env = sub.dequeue();
        if (env === undefined) break;
        this.invoke(sub, env);
        if (sub.closed) break;
      }
      if (!sub.closed && sub.pending > 0 && !sub.scheduled) {
        sub.scheduled = true;
        this.ready.add(sub);
      }
    }
    if (this.ready.size > 0) {
      this.drainScheduled = true;
      setImmediate(() => this.drain());
    } else {
      for (const w of this.flushWaiters.splice(0)) w();
    }
  }

  private invoke(sub: InprocSubscription, env: Envelope): void {
    sub.delivered++;
    this.delivered++;
    const msg: Message = {
      subject: env.subject,
      data: env.data,
      headers: env.headers,
      reply: env.reply,
      respond: (data, options) => {
        if (env.reply === undefined || this.closed) return false;
        this.publish(
          env.reply,
          data,
          options?.headers === undefined ? {} : { headers: options.headers },
        );
        return true;
      },
    };
    try {
      const r = sub.handler(msg);
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).catch((e: unknown) => this.onHandlerError(sub, e));
      }
    } catch (e) {
      this.onHandlerError(sub, e);
    }
  }

  private onHandlerError(sub: InprocSubscription, e: unknown): void {
    this.handlerErrors++;
    this.log.warn(
      { subject: sub.subject, err: e instanceof Error ? e.message : String(e) },
      'subscription handler failed',
    );
  }
}

assert(DELIVERY_BATCH_MESSAGES_MAX > 0, 'delivery batch');
