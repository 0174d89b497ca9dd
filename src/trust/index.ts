/**
 * Public door of the trust layer: RFC 9162 Merkle proofs, composite ML-DSA-65 + Ed25519
 * signatures, the X25519 + ML-KEM-768 hybrid KEM, key files, the durable transparency log,
 * C2SP signed notes, checkpoints and witness cosignatures, and TUF-style signed updates.
 * Other layers import only this module.
 */
export { TRUST_ERROR_CODES, TrustError, type TrustErrorCode, isTrustError } from './errors.ts';
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
