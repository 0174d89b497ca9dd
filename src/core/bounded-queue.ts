/**
 * A bounded FIFO ring with a visible drop policy: the per-subscription queue of every transport.
 * The backing array grows on demand up to its bound and is released when the queue drains, so
 * an idle subscription costs a few bytes however large its bound.
 */
import { assert } from './errors.ts';
import type { DropPolicy, MessageHandler, Subscription } from './transport.ts';

/** A bounded FIFO queue. */
export class BoundedQueue<T> {
  private readonly ring: (T | undefined)[] = [];
  private head = 0;
  private count = 0;
  /** Items dropped by the policy since creation. */
  dropped = 0;

  constructor(
    readonly itemsMax: number,
    readonly policy: DropPolicy,
  ) {
    assert(Number.isInteger(itemsMax) && itemsMax >= 1, 'queue bound must be a positive integer');
  }

  /** Items queued. */
  get size(): number {
    return this.count;
  }

  /**
   * Queues `item`. When full, `drop-oldest` evicts the head to make room and `drop-newest`
   * refuses `item`. Returns the number of items dropped (0 or 1).
   */
  push(item: T): number {
    let drops = 0;
    if (this.count === this.itemsMax) {
      drops = 1;
      this.dropped++;
      if (this.policy === 'drop-newest') return drops;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.itemsMax;
      this.count--;
    }
    this.ring[(this.head + this.count) % this.itemsMax] = item;
    this.count++;
    return drops;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.itemsMax;
    this.count--;
    if (this.count === 0) this.clear();
    return item;
  }

  /** Drops every queued item (not counted as policy drops). */
  clear(): void {
    this.ring.length = 0;
    this.head = 0;
    this.count = 0;
  }
}

/**
 * A subscription whose messages wait in a {@link BoundedQueue} until the transport's delivery
 * loop hands them to the handler. Both transports (in-process and NATS) use it, so the drop
 * policy and its counters behave the same whichever bus is underneath.
 */
export class QueuedSubscription<T> implements Subscription {
  delivered = 0;
  closed = false;
  /** Set while the subscription waits in its transport's ready list. */
  scheduled = false;
  private readonly queued: BoundedQueue<T>;

  constructor(
    readonly subject: string,
    readonly queue: string | undefined,
    readonly handler: MessageHandler,
    pendingMax: number,
    policy: DropPolicy,
    private readonly onUnsubscribe: (sub: QueuedSubscription<T>) => void,
  ) {
    this.queued = new BoundedQueue(pendingMax, policy);
  }

  get pending(): number {
    return this.queued.size;
  }

  get dropped(): number {
    return this.queued.dropped;
  }

  /** Queues a message; returns the number of messages the drop policy discarded. */
  enqueue(item: T): number {
    return this.queued.push(item);
  }

  dequeue(): T | undefined {
    return this.queued.shift();
  }

  clear(): void {
    this.queued.clear();
  }

  /** Stops delivery; idempotent (the transport ignores a second removal). */
  unsubscribe(): void {
    this.onUnsubscribe(this);
  }
}
