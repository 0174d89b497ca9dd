/**
 * Named bounds of the fabric layer, with units in their names. Defaults follow Kubernetes'
 * node-lease spirit (renew every 10 s, dead after 40 s); every one is configurable per node and
 * tests shrink them. Relations are asserted when the module loads.
 */
import { assert } from '../core/index.ts';

/** Default period at which a tile renews its lease with its pod (Kubernetes: 10 s). */
export const LEASE_RENEW_MS_DEFAULT = 10_000;
/** Default silence after which a member is declared dead (Kubernetes: 40 s grace). */
export const LEASE_DEAD_MS_DEFAULT = 40_000;
/** Default silence after which a member becomes suspect and indirect probes start. */
export const LEASE_SUSPECT_MS_DEFAULT = 20_000;
/** Helpers asked to probe a suspect member indirectly (SWIM's k; Das et al. 2002, §3.1). */
export const SWIM_INDIRECT_PROBES_K = 3;
/** Timeout of one direct or indirect probe. */
export const PROBE_TIMEOUT_MS_DEFAULT = 1_000;

/** Largest fabric control message accepted from the wire (NATS allows 1 MiB; control is small). */
export const WIRE_MESSAGE_BYTES_MAX = 64 * 1024;
/** Largest clock skew accepted on a signed envelope, either direction. */
export const WIRE_CLOCK_SKEW_MS_MAX = 5 * 60_000;
/** Senders whose last sequence number a receiver remembers for replay detection. */
export const WIRE_REPLAY_SENDERS_MAX = 100_000;

/** Default number of tiles one pod admits. */
export const POD_TILES_MAX_DEFAULT = 64;
/** Largest number of tiles a pod may be configured to admit. */
export const POD_TILES_MAX = 4096;
/** Messages a pod buffers for its hub while its uplink is down; oldest dropped beyond. */
export const UPLINK_BUFFER_MESSAGES_MAX = 10_000;

/** Largest number of workloads a controller holds. */
export const WORKLOADS_MAX = 1_000_000;
/** Largest replica count of one workload. */
export const WORKLOAD_REPLICAS_MAX = 10_000;
/** Largest workload spec file read, in bytes. */
export const WORKLOAD_FILE_BYTES_MAX = 1024 * 1024;
/** Tiles named individually in an explanation (the rest are counted by reason). */
export const EXPLAIN_TILES_LISTED_MAX = 50;
/** Instances one preemption may evict on one tile. */
export const PREEMPT_VICTIMS_MAX = 64;
/** Default period of the controller's reconciliation loop. */
export const RECONCILE_INTERVAL_MS_DEFAULT = 2_000;
/** Default time a pod may stay unreachable before its placements are moved elsewhere. */
export const POD_UNREACHABLE_GRACE_MS_DEFAULT = 60_000;
/** Placements one reconciliation pass sends, so a large backlog never blocks the loop. */
export const RECONCILE_ACTIONS_PER_PASS_MAX = 5_000;

/** Timeout of fabric control requests (join, assign, inventory). */
export const CONTROL_REQUEST_TIMEOUT_MS = 2_000;

assert(
  LEASE_SUSPECT_MS_DEFAULT > LEASE_RENEW_MS_DEFAULT,
  'suspect after more than one renew period',
);
assert(LEASE_DEAD_MS_DEFAULT > LEASE_SUSPECT_MS_DEFAULT, 'dead after suspect');
assert(WIRE_MESSAGE_BYTES_MAX < 1024 * 1024, 'wire bound under NATS max_payload');
