/**
 * Subjects and message bodies of the fabric control plane, each body a zod schema so a
 * receiver checks every field before use. All subjects live under `genesis.fabric.` except
 * membership events, which use core's `genesis.members.<parent>` so other layers hear them.
 */
import { z } from 'zod';
import { membershipSubject } from '../core/index.ts';
import { WORKLOAD_REPLICAS_MAX } from './limits.ts';

/** Largest number of instance ids a heartbeat or inventory entry lists. */
export const INSTANCES_PER_TILE_MAX = 1_024;
/** Largest number of members one inventory reply lists. */
export const INVENTORY_MEMBERS_MAX = 4_096;
/** Largest number of events one uplink batch carries. */
export const EVENT_BATCH_MAX = 256;

const name = z.string().regex(/^[a-z0-9][a-z0-9.-]{0,127}$/);
const labels = z
  .record(z.string().max(64), z.string().max(128))
  .refine((r) => Object.keys(r).length <= 64, 'at most 64 labels');

/** Subjects, by purpose. `n` is a node name. */
export const Subjects = {
  join: (pod: string) => `genesis.fabric.${pod}.join`,
  heartbeat: (pod: string) => `genesis.fabric.${pod}.hb`,
  inventory: (pod: string) => `genesis.fabric.${pod}.inventory`,
  /** Counters of a node (including wire rejections by reason). */
  status: (n: string) => `genesis.fabric.${n}.status`,
  ping: (n: string) => `genesis.fabric.${n}.ping`,
  probe: (n: string) => `genesis.fabric.${n}.probe`,
  assign: (tile: string) => `genesis.fabric.${tile}.assign`,
  unassign: (tile: string) => `genesis.fabric.${tile}.unassign`,
  podstat: (hub: string) => `genesis.fabric.${hub}.podstat`,
  events: (hub: string) => `genesis.fabric.${hub}.events`,
  redirect: (hub: string) => `genesis.fabric.${hub}.redirect`,
  /** Redirect service of any hub, for tiles whose pod is gone (queue group `hubs`). */
  redirectAny: 'genesis.fabric.redirect',
  control: (hub: string, verb: string) => `genesis.fabric.ctl.${hub}.${verb}`,
  members: membershipSubject,
} as const;

/** Capacity a tile announces. */
export const capacitySchema = z.strictObject({
  cpuMillis: z.number().int().min(1).max(1_000_000),
  memoryMb: z.number().int().min(1).max(16_777_216),
});
/** A tile's capacity. */
export type Capacity = z.infer<typeof capacitySchema>;

/** Join request body (signed, unbound sender). */
export const joinBodySchema = z.strictObject({
  capacity: capacitySchema,
  labels,
  wantName: name.optional(),
});
/** Join request body. */
export type JoinBody = z.infer<typeof joinBodySchema>;

/** Membership timing a pod hands its tiles. */
export const leaseConfigSchema = z.strictObject({
  renewMs: z.number().int().min(1),
  suspectMs: z.number().int().min(1),
  deadMs: z.number().int().min(1),
  probeTimeoutMs: z.number().int().min(1),
});
/** Membership timing. */
export type LeaseConfig = z.infer<typeof leaseConfigSchema>;

/** Join reply. */
export const joinReplySchema = z.discriminatedUnion('ok', [
  z.strictObject({
    ok: z.literal(true),
    name,
    pod: name,
    config: leaseConfigSchema,
    capabilities: z.array(z.string().max(64)).max(64),
    podKey: z.string().max(64),
  }),
  z.strictObject({
    ok: z.literal(false),
    reason: z.enum(['full', 'rejected', 'draining']),
    redirect: z.strictObject({ pod: name, url: z.string().max(256) }).optional(),
  }),
]);
/** Join reply. */
export type JoinReply = z.infer<typeof joinReplySchema>;

/** Heartbeat (lease renewal) body. */
export const heartbeatBodySchema = z.strictObject({
  instances: z.array(z.string().max(160)).max(INSTANCES_PER_TILE_MAX),
});

/** Ping/probe replies are signed envelopes of these bodies. */
export const pongBodySchema = z.strictObject({ nonce: z.string().max(64) });
/** Indirect probe request (from the pod to a helper tile). */
export const probeRequestSchema = z.strictObject({ target: name, nonce: z.string().max(64) });
/** Indirect probe answer (signed by the helper). */
export const probeAckBodySchema = z.strictObject({
  target: name,
  nonce: z.string().max(64),
  reachable: z.boolean(),
});

/** One instance of a workload placed on a tile. */
export const instanceSchema = z.strictObject({
  id: z.string().max(160),
  workload: z.string().max(128),
  replica: z.number().int().min(0).max(WORKLOAD_REPLICAS_MAX),
  module: z.string().max(128),
  cpuMillis: z.number().int().min(0),
  memoryMb: z.number().int().min(0),
  capabilities: z.array(z.string().max(64)).max(64),
});
/** An instance assignment. */
export type InstanceSpec = z.infer<typeof instanceSchema>;

/** Assign request body (from a controller; signed). */
export const assignBodySchema = z.strictObject({ instance: instanceSchema });
/** Unassign request body (signed). */
export const unassignBodySchema = z.strictObject({ id: z.string().max(160) });
/** Reply to assign/unassign. */
export const ackSchema = z.strictObject({ ok: z.boolean(), error: z.string().max(256).optional() });

/** States of a member. */
export const memberStateSchema = z.enum(['alive', 'suspect', 'dead']);

/** A member as its pod records it (KV value and inventory entry). */
export const memberRecordSchema = z.strictObject({
  name,
  key: z.string().max(64),
  state: memberStateSchema,
  capacity: capacitySchema,
  labels,
  instances: z.array(z.string().max(160)).max(INSTANCES_PER_TILE_MAX),
  joinedAtMs: z.number(),
  changedAtMs: z.number(),
});
/** A member record. */
export type MemberRecord = z.infer<typeof memberRecordSchema>;

/** Inventory reply of a pod. */
export const inventorySchema = z.strictObject({
  pod: name,
  atMs: z.number(),
  draining: z.boolean(),
  /** Capabilities the pod grants its tiles. */
  capabilities: z.array(z.string().max(64)).max(64),
  members: z.array(memberRecordSchema).max(INVENTORY_MEMBERS_MAX),
});
/** Inventory reply. */
export type Inventory = z.infer<typeof inventorySchema>;

/** A pod's periodic summary to its hub. */
export const podstatSchema = z.strictObject({
  pod: name,
  url: z.string().max(256),
  tiles: z.number().int().min(0),
  tilesMax: z.number().int().min(0),
  alive: z.number().int().min(0),
  atMs: z.number(),
});
/** A pod summary. */
export type Podstat = z.infer<typeof podstatSchema>;

/** A membership event (core's MembershipEvent shape). */
export const membershipEventSchema = z.strictObject({
  parent: name,
  child: name,
  from: z.enum(['alive', 'suspect', 'dead', 'unknown']),
  to: memberStateSchema,
  atMs: z.number(),
});

/** A batch of buffered events a pod sends up (signed). */
export const eventBatchSchema = z.strictObject({
  pod: name,
  events: z.array(membershipEventSchema).max(EVENT_BATCH_MAX),
});

/** Redirect request/reply. */
export const redirectRequestSchema = z.strictObject({ exclude: z.array(name).max(64) });
/** Redirect reply. */
export const redirectReplySchema = z
  .strictObject({ pod: name, url: z.string().max(256) })
  .nullable();
