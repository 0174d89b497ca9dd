/**
 * Named bounds shared across layers. Every queue, buffer, message and loop in Genesis has a
 * bound with its unit in the name; layer-specific bounds live in their layer (see LIMITS.md).
 * Relations between bounds are asserted when this module loads so a bad edit fails at once.
 */
import { assert } from './errors.ts';

/** Largest message body the transport accepts (NATS' default max_payload is 1 MiB). */
export const TRANSPORT_MESSAGE_BYTES_MAX = 1024 * 1024;
/** Largest subject, in bytes. */
export const TRANSPORT_SUBJECT_BYTES_MAX = 256;
/** Largest number of headers on one message. */
export const TRANSPORT_HEADERS_COUNT_MAX = 64;
/** Default bound on messages queued for one subscription before its drop policy applies. */
export const SUBSCRIPTION_PENDING_MESSAGES_DEFAULT = 8192;
/** Upper bound a caller may ask for on one subscription's queue. */
export const SUBSCRIPTION_PENDING_MESSAGES_MAX = 1_000_000;
/** Messages a subscription handles per delivery turn before yielding the event loop. */
export const DELIVERY_BATCH_MESSAGES_MAX = 256;
/** Default request timeout. */
export const REQUEST_TIMEOUT_MS_DEFAULT = 2_000;
/** Largest request timeout accepted. */
export const REQUEST_TIMEOUT_MS_MAX = 10 * 60_000;

/** Default heartbeat period of a node to its parent (in the spirit of Kubernetes' 10 s lease). */
export const HEARTBEAT_INTERVAL_MS_DEFAULT = 1_000;
/** Missed heartbeat periods before a parent marks a child suspect. */
export const HEARTBEAT_SUSPECT_PERIODS = 2;
/** Missed heartbeat periods before a parent marks a child dead. */
export const HEARTBEAT_DEAD_PERIODS = 4;

/** Largest topology the embedded fabric will boot in one process. */
export const TOPOLOGY_NODES_MAX = 200_000;
/** Largest topology file read, in bytes. */
export const TOPOLOGY_FILE_BYTES_MAX = 4 * 1024 * 1024;

/** Bound on log and error lines the CLI keeps for its status display. */
export const STATUS_RECENT_ERRORS_MAX = 32;

assert(HEARTBEAT_DEAD_PERIODS > HEARTBEAT_SUSPECT_PERIODS, 'dead must come after suspect');
assert(SUBSCRIPTION_PENDING_MESSAGES_DEFAULT <= SUBSCRIPTION_PENDING_MESSAGES_MAX, 'pending bound');
assert(DELIVERY_BATCH_MESSAGES_MAX <= SUBSCRIPTION_PENDING_MESSAGES_DEFAULT, 'batch bound');
