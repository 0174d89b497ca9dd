/**
 * Content identifiers and the manifest format. Small objects (≤ {@link CHUNK_BYTES}) are one
 * raw block named by a CIDv1 `raw` (0x55) + sha2-256 CID, exactly what IPFS' unixfs-v1-2025
 * profile produces for a small file (`hello world` →
 * `bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e`). Large objects are cut into
 * 1 MiB raw chunks linked from one dag-cbor (0x71) manifest, whose CID names the object.
 */
import { createHash } from 'node:crypto';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { StoreError, StoreErrorCode } from './errors.ts';
import {
  CHUNK_BYTES,
  MANIFEST_BYTES_MAX,
  MANIFEST_CHUNKS_MAX,
  OBJECT_BYTES_MAX,
} from './limits.ts';

/** Multicodec code of raw bytes. */
export const RAW_CODE = 0x55;
/** Multicodec code of dag-cbor. */
export const DAG_CBOR_CODE = 0x71;
/** Multihash code of sha2-256. */
export const SHA2_256_CODE = 0x12;
/** The `format` field of every manifest this version writes. */
export const MANIFEST_FORMAT = 'genesis-file-v1';

export { CID };

/** SHA-256 of `bytes` (Node's OpenSSL, which uses SHA-NI where the CPU has it). */
export function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

/** The CIDv1 of a block with the given codec, hashed with sha2-256. */
export function blockCid(code: typeof RAW_CODE | typeof DAG_CBOR_CODE, bytes: Uint8Array): CID {
  return CID.createV1(code, Digest.create(SHA2_256_CODE, sha256(bytes)));
}

/** The CIDv1 `raw` + sha2-256 of `bytes`. */
export function rawCid(bytes: Uint8Array): CID {
  return blockCid(RAW_CODE, bytes);
}

/**
 * Parses a CID string (any multibase the library knows; base32 `b...` is canonical).
 * Only CIDv1 raw or dag-cbor with sha2-256 are objects of this store.
 * @throws {StoreError} `STORE_BAD_CID`
 */
export function parseCid(text: string): CID {
  let cid: CID;
  try {
    cid = CID.parse(text.trim());
  } catch (e) {
    throw new StoreError(StoreErrorCode.BadCid, `"${text}" is not a CID`, {
      cause: e,
      details: { cid: text },
    });
  }
  checkSupported(cid);
  return cid;
}

/** Throws unless `cid` is a CIDv1 raw/dag-cbor sha2-256 CID. @throws {StoreError} */
export function checkSupported(cid: CID): void {
  if (
    cid.version !== 1 ||
    (cid.code !== RAW_CODE && cid.code !== DAG_CBOR_CODE) ||
    cid.multihash.code !== SHA2_256_CODE
  ) {
    throw new StoreError(
      StoreErrorCode.BadCid,
      `unsupported CID ${cid.toString()} (need CIDv1 raw or dag-cbor with sha2-256)`,
      {
        details: {
          cid: cid.toString(),
          version: cid.version,
          codec: cid.code,
          hash: cid.multihash.code,
        },
      },
    );
  }
}

/**
 * Checks that `bytes` hash to `cid`. This is the last gate before bytes leave the store, so a
 * reconstruction from wrong shards can never be returned as data.
 * @throws {StoreError} `STORE_CID_MISMATCH`
 */
export function verifyBlock(cid: CID, bytes: Uint8Array | readonly Uint8Array[]): void {
  if (!hashesTo(cid, bytes)) {
    const n = bytes instanceof Uint8Array ? bytes.length : bytes.reduce((t, p) => t + p.length, 0);
    throw new StoreError(StoreErrorCode.CidMismatch, `block does not hash to ${cid.toString()}`, {
      details: { cid: cid.toString(), bytes: n },
    });
  }
}

/** Whether a block, whole or as consecutive parts (hashed in order, never joined), hashes to `cid`. */
export function hashesTo(cid: CID, bytes: Uint8Array | readonly Uint8Array[]): boolean {
  const h = createHash('sha256');
  if (bytes instanceof Uint8Array) h.update(bytes);
  else for (const p of bytes) h.update(p);
  const got = h.digest();
  const want = cid.multihash.digest;
  return got.length === want.length && got.equals(want);
}

/** The manifest of a large object: the dag-cbor root block linking its chunks in order. */
export interface Manifest {
  /** Always {@link MANIFEST_FORMAT}. */
  readonly format: typeof MANIFEST_FORMAT;
  /** Total object size in bytes. */
  readonly size: number;
  /** Size of every chunk but the last. */
  readonly chunkBytes: number;
  /** Raw CIDs of the chunks, in order (IPLD links, CBOR tag 42). */
  readonly chunks: readonly CID[];
}

/** Encodes a manifest; returns its block bytes and CID. */
export function encodeManifest(
  size: number,
  chunks: readonly CID[],
): { cid: CID; bytes: Uint8Array; manifest: Manifest } {
  const manifest: Manifest = { format: MANIFEST_FORMAT, size, chunkBytes: CHUNK_BYTES, chunks };
  validateManifest(manifest);
  const bytes = dagCbor.encode(manifest);
  return { cid: blockCid(DAG_CBOR_CODE, bytes), bytes, manifest };
}

/**
 * Decodes and validates a manifest block (already verified against its CID).
 * @throws {StoreError} `STORE_BAD_MANIFEST`
 */
export function decodeManifest(bytes: Uint8Array): Manifest {
  if (bytes.length > MANIFEST_BYTES_MAX) {
    throw new StoreError(
      StoreErrorCode.BadManifest,
      `manifest of ${bytes.length} bytes exceeds MANIFEST_BYTES_MAX`,
      { details: { bytes: bytes.length } },
    );
  }
  let value: unknown;
  try {
    value = dagCbor.decode(bytes);
  } catch (e) {
    throw new StoreError(StoreErrorCode.BadManifest, 'manifest is not valid dag-cbor', {
      cause: e,
    });
  }
  const m = value as Partial<Manifest> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    m.format !== MANIFEST_FORMAT ||
    !Array.isArray(m.chunks)
  ) {
    throw new StoreError(StoreErrorCode.BadManifest, `not a ${MANIFEST_FORMAT} manifest`);
  }
  const manifest = m as Manifest;
  validateManifest(manifest);
  return manifest;
}

function validateManifest(m: Manifest): void {
  const bad = (why: string): never => {
    throw new StoreError(StoreErrorCode.BadManifest, `invalid manifest: ${why}`, {
      details: { size: m.size, chunks: m.chunks.length },
    });
  };
  if (!Number.isSafeInteger(m.size) || m.size <= CHUNK_BYTES || m.size > OBJECT_BYTES_MAX)
    bad('size out of range');
  if (m.chunkBytes !== CHUNK_BYTES) bad(`chunkBytes must be ${CHUNK_BYTES}`);
  if (m.chunks.length > MANIFEST_CHUNKS_MAX || m.chunks.length !== Math.ceil(m.size / m.chunkBytes))
    bad('chunk count does not match size');
  for (const c of m.chunks) {
    const cid = CID.asCID(c);
    if (
      cid === null ||
      cid.version !== 1 ||
      cid.code !== RAW_CODE ||
      cid.multihash.code !== SHA2_256_CODE
    )
      bad('chunk link is not a raw sha2-256 CIDv1');
  }
}

/** Length of chunk `i` of an object of `size` bytes. */
export function chunkLength(size: number, i: number): number {
  return Math.min(CHUNK_BYTES, size - i * CHUNK_BYTES);
}
