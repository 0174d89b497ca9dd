/**
 * Public door of the trust layer: RFC 9162 Merkle proofs, composite ML-DSA-65 + Ed25519
 * signatures, the X25519 + ML-KEM-768 hybrid KEM, key files, the durable transparency log,
 * C2SP signed notes, checkpoints and witness cosignatures, and TUF-style signed updates.
 * Other layers import only this module.
 */

export {
  COMPOSITE_CONTEXT_BYTES_MAX,
  COMPOSITE_PREFIX,
  COMPOSITE_SCHEMES,
  type CompositeAlgorithm,
  type CompositeKeyPair,
  type CompositeScheme,
  CompositeSigner,
  CompositeVerifier,
  compositeKeyGen,
  compositeMessageRepresentative,
  compositePublicKey,
  compositeSign,
  compositeVerify,
  DEFAULT_COMPOSITE_ALG,
} from './composite.ts';
export { ed25519KeyGen, ed25519PublicKey, ed25519Sign, ed25519Verify } from './ed25519.ts';
export { isTrustError, TRUST_ERROR_CODES, TrustError, type TrustErrorCode } from './errors.ts';
export {
  HYBRID_KEM_ALG,
  HYBRID_KEM_CIPHERTEXT_BYTES,
  HYBRID_KEM_PUBLIC_KEY_BYTES,
  HYBRID_KEM_SECRET_KEY_BYTES,
  HYBRID_KEM_SHARED_SECRET_BYTES,
  type HybridKemKeyPair,
  hybridDecapsulate,
  hybridEncapsulate,
  hybridKemKeyPair,
  hybridKemPublicKey,
} from './kem.ts';
export {
  checkKeyName,
  generateKeyPair,
  KEY_FILE_BYTES_MAX,
  KEY_FILE_FORMAT,
  type KeyAlgorithm,
  type NamedKeyPair,
  type NamedPublicKey,
  PRIVATE_KEY_FILE_MODE,
  publicKeyOf,
  readPrivateKey,
  readPublicKey,
  writeKeyPair,
} from './keyfile.ts';
export {
  type AppendResult,
  DurableLog,
  type DurableLogOptions,
  LOG_BATCH_BYTES_MAX,
  LOG_BATCH_ENTRIES_MAX,
  LOG_ENTRY_BYTES_MAX,
  LOG_OPEN_RECHECK_ENTRIES,
  type LogSynchronous,
  type TreeHead,
} from './log.ts';
export {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  MERKLE_HASH_BYTES,
  MERKLE_PROOF_HASHES_MAX,
  MemoryMerkleTree,
  type MerkleHashSource,
  nodeHash,
  rangeHash,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from './merkle.ts';
