/**
 * Public door of the store layer: Reed-Solomon erasure coding, CIDs, blockstores, placement,
 * repair and CRDT documents. See docs/store.md.
 */

export { MemoryCatalog, type PinRecord, SqliteCatalog, type StoreCatalog } from './catalog.ts';
export {
  blockCid,
  CID,
  chunkLength,
  DAG_CBOR_CODE,
  decodeManifest,
  encodeManifest,
  MANIFEST_FORMAT,
  type Manifest,
  parseCid,
  RAW_CODE,
  rawCid,
  SHA2_256_CODE,
  verifyBlock,
} from './cid.ts';
export {
  attachStore,
  StoreCluster,
  type StoreClusterOptions,
  type StoreClusterStatus,
} from './cluster.ts';
export {
  CrdtReplica,
  type CrdtReplicaOptions,
  type CrdtRoot,
  CrdtSyncEndpoint,
  crdtSubject,
} from './crdt.ts';
export { DiskShardStore, type DiskShardStoreOptions } from './disk-shard-store.ts';
export * from './erasure/index.ts';
export { isStoreError, StoreError, StoreErrorCode, type StoreErrorCodeValue } from './errors.ts';
export * from './limits.ts';
export {
  DEFAULT_PROFILE_NAME,
  DEFAULT_PROFILES,
  PlacementMap,
  type Profile,
  resolveProfile,
  SCOPES,
  type Scope,
  topologyTiles,
  validateProfile,
} from './placement.ts';
export {
  FRAME_POOL_FRAMES_MAX,
  FRAME_POOL_GRAIN_BYTES,
  FramePool,
  type ShardReplies,
  type ShardRequest,
  tileSubject,
} from './protocol.ts';
export {
  REPAIR_STRIPES_IN_FLIGHT_MAX,
  type RepairOptions,
  type RepairReport,
  repairPass,
} from './repair.ts';
export {
  MemoryShardStore,
  type ShardHeader,
  type ShardHealth,
  type ShardRecord,
  type ShardStore,
  type ShardStoreStats,
  type ShardTarget,
} from './shard-store.ts';
export {
  DistributedStore,
  type DistributedStoreInit,
  type ObjectStat,
  type PutOptions,
  type PutResult,
  type PutSource,
  rechunk,
  type ShardLocation,
  type ShardProblem,
  type StripeStat,
  writeQuorum,
} from './store.ts';
export {
  type CodecFactory,
  type ErasureCodec,
  encodeStripe,
  encodeStripeInto,
  joinParts,
  joinStripe,
  reedSolomonCodec,
  shardLength,
  stripeParts,
} from './stripe.ts';
export {
  BlockstoreService,
  type BlockstoreServiceOptions,
  serveShardStore,
  TILE_PENDING_REQUESTS_MAX,
} from './tile-service.ts';
