/**
 * The transport contract: publish/subscribe on hierarchical subjects, request/reply with
 * timeouts, and bounded per-subscription queues with a visible drop policy. It is shaped after
 * NATS (subjects are dot-separated tokens, `*` matches one token, `>` the rest; queue groups
 * share a subject's load; messages carry headers) so the NATS implementation in the fabric layer
 * is a thin adapter, and both pass one compliance suite (test/support/transport-compliance.ts).
 */
import { GenesisError } from './errors.ts';
import {
  REQUEST_TIMEOUT_MS_DEFAULT,
  REQUEST_TIMEOUT_MS_MAX,
  SUBSCRIPTION_PENDING_MESSAGES_DEFAULT,
  SUBSCRIPTION_PENDING_MESSAGES_MAX,
  TRANSPORT_HEADERS_COUNT_MAX,
  TRANSPORT_MESSAGE_BYTES_MAX,
  TRANSPORT_SUBJECT_BYTES_MAX,
} from './limits.ts';

/** Message headers; keys are case-sensitive as in NATS. */
export type MessageHeaders = Readonly<Record<string, string>>;

/** A delivered message. */
export interface Message {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MessageHeaders | undefined;
  /** Subject to answer on, when the sender expects a reply. */
  readonly reply: string | undefined;
  /** Publishes `data` to {@link reply}; returns false when there is nothing to reply to. */
  respond(data: Uint8Array, options?: { headers?: MessageHeaders }): boolean;
}

/** Options of {@link Transport.publish}. */
export interface PublishOptions {
  readonly headers?: MessageHeaders;
  readonly reply?: string;
}

/**
 * What a full subscription queue does with a new message: `drop-oldest` keeps the freshest
 * data (telemetry, heartbeats), `drop-newest` keeps what was queued first (commands).
 * Either way the drop is counted in {@link Subscription.dropped} and in transport stats.
 */
export type DropPolicy = 'drop-oldest' | 'drop-newest';

/** Options of {@link Transport.subscribe}. */
export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  readonly queue?: string;
  /** Bound on queued, undelivered messages (default SUBSCRIPTION_PENDING_MESSAGES_DEFAULT). */
  readonly pendingMessagesMax?: number;
  readonly dropPolicy?: DropPolicy;
}

/** A handler of delivered messages. A thrown error or rejected promise is counted, not fatal. */
export type MessageHandler = (msg: Message) => void | Promise<void>;

/** A live subscription. */
export interface Subscription {
  readonly subject: string;
  readonly queue: string | undefined;
  /** Messages handed to the handler so far. */
  readonly delivered: number;
  /** Messages dropped because the queue was full. */
  readonly dropped: number;
  /** Messages queued and not yet delivered. */
  readonly pending: number;
  /** Stops delivery; idempotent. Queued messages are discarded. */
  unsubscribe(): void;
}

/** Options of {@link Transport.request}. */
export interface RequestOptions {
  readonly timeoutMs?: number;
  readonly headers?: MessageHeaders;
}

/** Counters every transport keeps. */
export interface TransportStats {
  readonly published: number;
  readonly delivered: number;
  readonly dropped: number;
  readonly handlerErrors: number;
  readonly subscriptions: number;
  readonly pending: number;
}

/** The transport contract. */
export interface Transport {
  /** Implementation name, e.g. `inproc` or `nats`. */
  readonly kind: string;
  /** Publishes a message; never blocks. Throws a {@link TransportError} on bad input. */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): void;
  /** Subscribes `handler` to `subject` (wildcards allowed). */
  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription;
  /**
   * Sends a request and resolves with the first reply.
   * @throws {TransportError} `TRANSPORT_TIMEOUT`, `TRANSPORT_NO_RESPONDERS`, `TRANSPORT_CLOSED`.
   */
  request(subject: string, data: Uint8Array, options?: RequestOptions): Promise<Message>;
  /** Resolves when everything published so far has been handed on (delivered or sent). */
  flush(): Promise<void>;
  /** Closes the transport; idempotent. Pending requests reject with `TRANSPORT_CLOSED`. */
  close(): Promise<void>;
  stats(): TransportStats;
}

/** Stable error codes of the transport. */
export const TransportErrorCode = {
  SubjectInvalid: 'TRANSPORT_SUBJECT_INVALID',
  PayloadTooLarge: 'TRANSPORT_PAYLOAD_TOO_LARGE',
  HeadersInvalid: 'TRANSPORT_HEADERS_INVALID',
  Timeout: 'TRANSPORT_TIMEOUT',
  NoResponders: 'TRANSPORT_NO_RESPONDERS',
  Closed: 'TRANSPORT_CLOSED',
  OptionInvalid: 'TRANSPORT_OPTION_INVALID',
} as const;

/** Errors raised by transports. */
export class TransportError extends GenesisError {
  constructor(
    code: (typeof TransportErrorCode)[keyof typeof TransportErrorCode],
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'TransportError';
  }
}

const TOKEN_RE = /^[^\s.*>]+$/;

/**
 * Checks a subject (or, with `allowWildcards`, a subscription pattern) against NATS rules:
 * non-empty dot-separated tokens without whitespace, `*` as a whole token, `>` only last.
 * @throws {TransportError} `TRANSPORT_SUBJECT_INVALID`
 */
export function validateSubject(subject: string, allowWildcards: boolean): void {
  if (subject.length === 0 || Buffer.byteLength(subject) > TRANSPORT_SUBJECT_BYTES_MAX) {
    throw new TransportError(
      TransportErrorCode.SubjectInvalid,
      `subject length out of range: "${subject}"`,
      {
        details: { subject, bytesMax: TRANSPORT_SUBJECT_BYTES_MAX },
      },
    );
  }
  const tokens = subject.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (TOKEN_RE.test(t)) continue;
    if (allowWildcards && (t === '*' || (t === '>' && i === tokens.length - 1))) continue;
    throw new TransportError(
      TransportErrorCode.SubjectInvalid,
      `invalid subject "${subject}" (token ${i}: "${t}")`,
      {
        details: { subject, token: i },
      },
    );
  }
}

/** Checks payload size and headers. @throws {TransportError} */
export function validatePayload(data: Uint8Array, headers: MessageHeaders | undefined): void {
  if (data.byteLength > TRANSPORT_MESSAGE_BYTES_MAX) {
    throw new TransportError(
      TransportErrorCode.PayloadTooLarge,
      `message of ${data.byteLength} bytes exceeds TRANSPORT_MESSAGE_BYTES_MAX (${TRANSPORT_MESSAGE_BYTES_MAX})`,
      { details: { bytes: data.byteLength, bytesMax: TRANSPORT_MESSAGE_BYTES_MAX } },
    );
  }
  if (headers !== undefined && Object.keys(headers).length > TRANSPORT_HEADERS_COUNT_MAX) {
    throw new TransportError(TransportErrorCode.HeadersInvalid, 'too many headers', {
      details: { countMax: TRANSPORT_HEADERS_COUNT_MAX },
    });
  }
}

/**
 * Checks the arguments of {@link Transport.subscribe} (pattern, queue group, queue bound) and
 * returns the queue bound to use. Every transport calls it so they reject the same input.
 * @throws {TransportError} `TRANSPORT_SUBJECT_INVALID`, `TRANSPORT_OPTION_INVALID`
 */
export function validateSubscribe(subject: string, options: SubscribeOptions): number {
  validateSubject(subject, true);
  const pendingMax = options.pendingMessagesMax ?? SUBSCRIPTION_PENDING_MESSAGES_DEFAULT;
  if (
    !Number.isInteger(pendingMax) ||
    pendingMax < 1 ||
    pendingMax > SUBSCRIPTION_PENDING_MESSAGES_MAX
  ) {
    throw new TransportError(
      TransportErrorCode.OptionInvalid,
      `pendingMessagesMax must be 1..${SUBSCRIPTION_PENDING_MESSAGES_MAX}`,
      { details: { pendingMessagesMax: pendingMax } },
    );
  }
  if (options.queue !== undefined) validateSubject(options.queue, false);
  return pendingMax;
}

/**
 * Checks the arguments of {@link Transport.request} (subject, payload, headers, timeout) and
 * returns the timeout to use. Every transport calls it so they reject the same input.
 * @throws {TransportError} `TRANSPORT_OPTION_INVALID`, `TRANSPORT_SUBJECT_INVALID`, payload errors
 */
export function validateRequest(
  subject: string,
  data: Uint8Array,
  options: RequestOptions,
): number {
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT;
  if (!(timeoutMs > 0 && timeoutMs <= REQUEST_TIMEOUT_MS_MAX)) {
    throw new TransportError(
      TransportErrorCode.OptionInvalid,
      `timeoutMs must be in (0, ${REQUEST_TIMEOUT_MS_MAX}]`,
      { details: { timeoutMs } },
    );
  }
  validateSubject(subject, false);
  validatePayload(data, options.headers);
  return timeoutMs;
}

/** True when `subject` (no wildcards) matches `pattern` (wildcards allowed). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const pt = p[i];
    if (pt === '>') return s.length > i;
    if (i >= s.length) return false;
    if (pt !== '*' && pt !== s[i]) return false;
  }
  return p.length === s.length;
}
