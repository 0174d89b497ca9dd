/**
 * The RFC 9171 bundle codec: {@link decodeBundle} and {@link encodeBundle}.
 *
 * A bundle is an indefinite-length CBOR array (§4.1) holding the primary block (§4.3.1) and one
 * or more canonical blocks (§4.3.2), the payload block last. Every other item uses definite
 * lengths and, when encoded here, the deterministic form of RFC 8949 §4.2.1, so a decoded valid
 * bundle re-encodes byte for byte. Block-type-specific data is kept as a view into the input:
 * decoding allocates a few small objects per block and never copies payloads.
 */
import { CborReader, CborWriter } from './cbor.ts';
import { crc16Zeroed, crc32cZeroed } from './crc.ts';
import { type Eid, readEid, writeEid } from './eid.ts';
import { BundleError, type BundleRule } from './errors.ts';
import { BUNDLE_BLOCKS_MAX, BUNDLE_BYTES_MAX } from './limits.ts';

/** CRC types (RFC 9171 §4.2.1). */
export const CrcType = { None: 0, Crc16: 1, Crc32c: 2 } as const;
/** A CRC type code. */
export type CrcType = (typeof CrcType)[keyof typeof CrcType];

/** Block type codes (RFC 9171 §9.1, RFC 9172 §11.1). */
export const BlockType = {
  Payload: 1,
  PreviousNode: 6,
  BundleAge: 7,
  HopCount: 10,
  Integrity: 11,
  Confidentiality: 12,
} as const;

/** Bundle processing control flags (RFC 9171 §4.2.3). */
export const BundleFlags = {
  IsFragment: 0x000001,
  AdminRecord: 0x000002,
  MustNotFragment: 0x000004,
  AckRequested: 0x000020,
  StatusTimeRequested: 0x000040,
  ReportReception: 0x004000,
  ReportForwarding: 0x010000,
  ReportDelivery: 0x020000,
  ReportDeletion: 0x040000,
} as const;

/** Block processing control flags (RFC 9171 §4.2.4). */
export const BlockFlags = {
  ReplicateInFragments: 0x01,
  ReportIfUnprocessed: 0x02,
  DeleteBundleIfUnprocessed: 0x04,
  DiscardBlockIfUnprocessed: 0x10,
} as const;

/** The primary bundle block (RFC 9171 §4.3.1). Times are milliseconds since 2000-01-01. */
export interface PrimaryBlock {
  readonly version: number;
  readonly flags: number;
  readonly crcType: CrcType;
  readonly destination: Eid;
  readonly source: Eid;
  readonly reportTo: Eid;
  readonly creationTime: number;
  readonly sequence: number;
  readonly lifetimeMs: number;
  /** Present only when the "is a fragment" flag is set. */
  readonly fragmentOffset?: number;
  /** Present only when the "is a fragment" flag is set. */
  readonly totalAduLength?: number;
}

/** A canonical block (RFC 9171 §4.3.2); `data` is the block-type-specific data. */
export interface CanonicalBlock {
  readonly type: number;
  readonly number: number;
  readonly flags: number;
  readonly crcType: CrcType;
  readonly data: Uint8Array;
  /**
   * Set only by {@link decodeCanonicalBlock} for the pre-RFC 9171 form in which the
   * block-type-specific data is a bare CBOR item instead of a byte string wrapping it (the
   * dtn7 bp7-rs samples). `data` then holds that item's encoding and is re-encoded bare.
   * Bundles never carry it: {@link decodeBundle} follows RFC 9171 §4.3.2 (byte string only).
   */
  readonly unwrappedData?: true;
}

/** A bundle: the primary block and its canonical blocks in order, the payload block last. */
export interface Bundle {
  readonly primary: PrimaryBlock;
  readonly blocks: readonly CanonicalBlock[];
}

/** Options of {@link decodeBundle}. */
export interface DecodeOptions {
  /**
   * Lenient decoding checks CBOR structure, CRCs, block numbering, block order and EID form but
   * not the two cross-block presence rules (RFC 9171 §4.3.1: a primary block without a CRC
   * needs a BIB over it; §4.4.2: creation time 0 needs a Bundle Age block), and accepts
   * non-shortest CBOR heads. Use it to process RFC 9173's Appendix A examples, which break
   * both presence rules. Default: strict.
   */
  readonly lenient?: boolean;
}

/** A rule violation found by {@link inspectBundle}. */
export interface BundleProblem {
  readonly rule: BundleRule;
  readonly message: string;
  readonly offset: number;
}

type Report = (rule: BundleRule, message: string, offset: number) => void;

const throwReport: Report = (rule, message, offset) => {
  throw new BundleError(rule, message, offset);
};

function readCrcType(r: CborReader): CrcType {
  const at = r.pos;
  const t = r.uint();
  if (t > 2)
    throw new BundleError(
      'crc-type-invalid',
      `CRC type ${t} is not 0, 1 or 2 (RFC 9171 §4.2.1)`,
      at,
    );
  return t as CrcType;
}

/** Reads and checks the CRC that ends a block which started at `start`. */
function checkCrc(r: CborReader, crcType: CrcType, start: number, report: Report): void {
  const at = r.pos;
  // Read the CRC in place (no subarray): it is the hot path of every decode.
  const len = r.head(2);
  const want = crcType === CrcType.Crc16 ? 2 : 4;
  if (len !== want)
    throw new BundleError(
      'crc-mismatch',
      `CRC value must be ${want} bytes for CRC type ${crcType}`,
      at,
    );
  if (r.end - r.pos < want) r.fail('CRC value runs past the end of input');
  const buf = r.buf;
  const p = r.pos;
  r.pos += want;
  let stored: number;
  let computed: number;
  if (crcType === CrcType.Crc16) {
    stored = ((buf[p] as number) << 8) | (buf[p + 1] as number);
    computed = crc16Zeroed(buf, start, p, 2);
  } else {
    stored =
      ((buf[p] as number) * 0x1000000 +
        (((buf[p + 1] as number) << 16) |
          ((buf[p + 2] as number) << 8) |
          (buf[p + 3] as number))) >>>
      0;
    computed = crc32cZeroed(buf, start, p, 4);
  }
  if (stored !== computed)
    report(
      'crc-mismatch',
      `stored CRC ${stored.toString(16)} != computed ${computed.toString(16)}`,
      at,
    );
}

function readPrimary(r: CborReader, report: Report): PrimaryBlock {
  const start = r.pos;
  const n = r.arrayLength();
  if (n < 8 || n > 11)
    throw new BundleError('primary-length', `primary block has ${n} items, not 8 to 11`, start);
  const version = r.uint();
  if (version !== 7)
    throw new BundleError('primary-version', `bundle protocol version ${version}, not 7`, start);
  const flags = r.uint();
  const crcType = readCrcType(r);
  const isFragment = (flags & BundleFlags.IsFragment) !== 0;
  const expected = 8 + (isFragment ? 2 : 0) + (crcType === CrcType.None ? 0 : 1);
  if (n !== expected) {
    throw new BundleError(
      isFragment || n === expected + 2 ? 'primary-fragment-fields' : 'primary-length',
      `primary block has ${n} items; fragment flag ${isFragment ? 'set' : 'clear'} and CRC type ${crcType} need ${expected}`,
      start,
    );
  }
  const destination = readEid(r);
  const source = readEid(r);
  const reportTo = readEid(r);
  const tsAt = r.pos;
  if (r.arrayLength() !== 2)
    throw new BundleError('primary-length', 'creation timestamp is [time, sequence]', tsAt);
  const creationTime = r.uint();
  const sequence = r.uint();
  const lifetimeMs = r.uint();
  let fragmentOffset: number | undefined;
  let totalAduLength: number | undefined;
  if (isFragment) {
    fragmentOffset = r.uint();
    totalAduLength = r.uint();
  }
  if (crcType !== CrcType.None) checkCrc(r, crcType, start, report);
  const base = {
    version,
    flags,
    crcType,
    destination,
    source,
    reportTo,
    creationTime,
    sequence,
    lifetimeMs,
  };
  return fragmentOffset === undefined || totalAduLength === undefined
    ? base
    : { ...base, fragmentOffset, totalAduLength };
}

function readCanonical(r: CborReader, report: Report, allowUnwrapped = false): CanonicalBlock {
  const start = r.pos;
  const n = r.arrayLength();
  if (n !== 5 && n !== 6)
    throw new BundleError('block-length', `canonical block has ${n} items, not 5 or 6`, start);
  const type = r.uint();
  const number = r.uint();
  const flags = r.uint();
  const crcType = readCrcType(r);
  if (n !== (crcType === CrcType.None ? 5 : 6)) {
    throw new BundleError(
      'block-length',
      `canonical block with CRC type ${crcType} must have ${crcType === 0 ? 5 : 6} items, has ${n}`,
      start,
    );
  }
  if (allowUnwrapped && r.peekMajor() !== 2) {
    const at = r.pos;
    r.skip();
    const data = r.buf.subarray(at, r.pos);
    if (crcType !== CrcType.None) checkCrc(r, crcType, start, report);
    return { type, number, flags, crcType, data, unwrappedData: true };
  }
  const data = r.bytes();
  if (crcType !== CrcType.None) checkCrc(r, crcType, start, report);
  return { type, number, flags, crcType, data };
}

/** Checks the block-type-specific data of the extension blocks RFC 9171 §4.4 defines. */
function checkKnownBlockData(b: CanonicalBlock, report: Report, offset: number): void {
  try {
    if (b.type === BlockType.PreviousNode) readPreviousNode(b);
    else if (b.type === BlockType.BundleAge) readBundleAge(b);
    else if (b.type === BlockType.HopCount) readHopCount(b);
  } catch (e) {
    if (e instanceof BundleError)
      report(
        e.rule === 'cbor-malformed' ? 'block-data-malformed' : e.rule,
        `block ${b.number} (type ${b.type}): ${e.message}`,
        offset,
      );
    else throw e;
  }
}

/** True when some BIB's target list names block 0 (RFC 9172 §3.6, first ASB field). */
function bibTargetsPrimary(blocks: readonly CanonicalBlock[]): boolean {
  for (const b of blocks) {
    if (b.type !== BlockType.Integrity) continue;
    try {
      const r = new CborReader(b.data, false);
      const n = r.arrayLength();
      for (let i = 0; i < n && i < BUNDLE_BLOCKS_MAX; i++) if (r.uint() === 0) return true;
    } catch {
      // An unparseable (for instance encrypted) BIB names no target we can see.
    }
  }
  return false;
}

function checkBlocks(
  primary: PrimaryBlock,
  blocks: readonly CanonicalBlock[],
  offsets: readonly number[],
  strict: boolean,
  report: Report,
): void {
  // Plain arrays, not Sets: a bundle has at most BUNDLE_BLOCKS_MAX blocks, and this runs on
  // every decode.
  const seen: number[] = [];
  let payloadIndex = -1;
  const singletons: number[] = [];
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i] as CanonicalBlock;
    const at = offsets[i] as number;
    if (b.type === 0) report('block-type-reserved', 'block type 0 is reserved (RFC 9171 §9.1)', at);
    if (b.number === 0)
      report('block-number-reserved', 'block number 0 is the primary block (RFC 9171 §4.3.2)', at);
    if (seen.includes(b.number))
      report(
        'block-number-duplicate',
        `block number ${b.number} is used twice (RFC 9171 §4.1)`,
        at,
      );
    seen.push(b.number);
    if (b.type === BlockType.Payload) {
      if (payloadIndex >= 0)
        report('payload-duplicate', 'more than one payload block (RFC 9171 §4.1)', at);
      payloadIndex = i;
      if (b.number !== 1)
        report(
          'payload-number',
          `payload block number is ${b.number}, must be 1 (RFC 9171 §4.3.3)`,
          at,
        );
    } else if (b.number === 1) {
      report(
        'block-number-reserved',
        `block number 1 is reserved for the payload, used by type ${b.type}`,
        at,
      );
    }
    if (
      b.type === BlockType.PreviousNode ||
      b.type === BlockType.BundleAge ||
      b.type === BlockType.HopCount
    ) {
      if (singletons.includes(b.type))
        report(
          'block-duplicate-singleton',
          `more than one block of type ${b.type} (RFC 9171 §4.4)`,
          at,
        );
      singletons.push(b.type);
      checkKnownBlockData(b, report, at);
    }
  }
  if (payloadIndex < 0) report('payload-missing', 'no payload block (RFC 9171 §4.1)', -1);
  else if (payloadIndex !== blocks.length - 1)
    report(
      'payload-not-last',
      'the payload block must be the last block (RFC 9171 §4.1)',
      offsets[payloadIndex] ?? -1,
    );
  if (!strict) return;
  if (primary.crcType === CrcType.None && !bibTargetsPrimary(blocks)) {
    report(
      'primary-crc-required',
      'primary block has no CRC and no BIB targets it (RFC 9171 §4.3.1)',
      0,
    );
  }
  if (primary.creationTime === 0 && !singletons.includes(BlockType.BundleAge)) {
    report(
      'zero-creation-time-without-bundle-age',
      'creation time 0 requires a Bundle Age block (RFC 9171 §4.4.2)',
      0,
    );
  }
  if (primary.fragmentOffset !== undefined && primary.totalAduLength !== undefined) {
    const payload = blocks[payloadIndex];
    if (
      payload !== undefined &&
      primary.fragmentOffset + payload.data.length > primary.totalAduLength
    ) {
      report(
        'primary-fragment-fields',
        'fragment offset + payload length exceeds the total ADU length (RFC 9171 §5.8)',
        0,
      );
    }
  }
}

function decodeWith(
  bytes: Uint8Array,
  strict: boolean,
  report: Report,
  presenceRules = strict,
): Bundle {
  if (bytes.length > BUNDLE_BYTES_MAX)
    throw new BundleError(
      'bundle-too-large',
      `bundle of ${bytes.length} bytes exceeds BUNDLE_BYTES_MAX (${BUNDLE_BYTES_MAX})`,
      0,
    );
  if (bytes.length === 0 || bytes[0] !== 0x9f) {
    throw new BundleError(
      'bundle-not-indefinite-array',
      'a bundle is an indefinite-length CBOR array (RFC 9171 §4.1)',
      0,
    );
  }
  const r = new CborReader(bytes, strict, 1);
  const primary = readPrimary(r, report);
  const blocks: CanonicalBlock[] = [];
  const offsets: number[] = [];
  while (!r.peekBreak()) {
    if (r.done) r.fail('bundle array is not terminated by a break');
    if (blocks.length >= BUNDLE_BLOCKS_MAX)
      throw new BundleError(
        'cbor-limit',
        `more than BUNDLE_BLOCKS_MAX (${BUNDLE_BLOCKS_MAX}) blocks`,
        r.pos,
      );
    offsets.push(r.pos);
    blocks.push(readCanonical(r, report));
  }
  r.readBreak();
  if (!r.done)
    throw new BundleError('cbor-trailing-bytes', `${r.end - r.pos} bytes after the bundle`, r.pos);
  if (blocks.length === 0)
    throw new BundleError(
      'bundle-too-few-blocks',
      'a bundle has at least a primary and a payload block (RFC 9171 §4.1)',
      r.pos,
    );
  checkBlocks(primary, blocks, offsets, presenceRules, report);
  if (r.nonDeterministic)
    report('cbor-non-deterministic', 'some integer or length is not in its shortest form', -1);
  return { primary, blocks };
}

/**
 * Decodes and validates an RFC 9171 bundle.
 * @param bytes the whole bundle, as received.
 * @param options `lenient: true` skips the two cross-block presence rules (see {@link DecodeOptions}).
 * @throws {BundleError} naming the first broken rule (`error.rule`) and its byte offset.
 * @example
 * const b = decodeBundle(bytes);
 * b.blocks.at(-1)?.data; // the payload
 */
export function decodeBundle(bytes: Uint8Array, options: DecodeOptions = {}): Bundle {
  const strict = options.lenient !== true;
  // Non-shortest heads are tolerated only in lenient mode; the reader reports them itself
  // in strict mode, so the after-the-fact report is only reached when lenient.
  return decodeWith(bytes, strict, strict ? throwReport : lenientReport);
}

const lenientReport: Report = (rule, message, offset) => {
  if (rule === 'cbor-non-deterministic') return;
  throw new BundleError(rule, message, offset);
};

/**
 * Decodes a bundle and lists every rule it breaks instead of stopping at the first (for
 * `genesis dtn inspect`). Structural CBOR errors still end decoding; they are returned as the
 * only problem with `bundle: undefined`.
 */
export function inspectBundle(bytes: Uint8Array): {
  bundle: Bundle | undefined;
  problems: BundleProblem[];
} {
  const problems: BundleProblem[] = [];
  try {
    const bundle = decodeWith(bytes, true, (rule, message, offset) =>
      problems.push({ rule, message, offset }),
    );
    return { bundle, problems };
  } catch (e) {
    if (!(e instanceof BundleError)) throw e;
    if (e.rule !== 'cbor-non-deterministic') {
      problems.push({ rule: e.rule, message: e.message, offset: e.offset });
      return { bundle: undefined, problems };
    }
  }
  // Non-deterministic CBOR: note it and decode leniently to find the other problems.
  problems.push({
    rule: 'cbor-non-deterministic',
    message: 'some integer or length is not in its shortest form',
    offset: -1,
  });
  try {
    const bundle = decodeWith(
      bytes,
      false,
      (rule, message, offset) => {
        if (rule !== 'cbor-non-deterministic') problems.push({ rule, message, offset });
      },
      true,
    );
    return { bundle, problems };
  } catch (e) {
    if (!(e instanceof BundleError)) throw e;
    problems.push({ rule: e.rule, message: e.message, offset: e.offset });
    return { bundle: undefined, problems };
  }
}

function single<T>(bytes: Uint8Array, strict: boolean, read: (r: CborReader) => T): T {
  const r = new CborReader(bytes, strict);
  const v = read(r);
  if (!r.done)
    throw new BundleError('cbor-trailing-bytes', `${r.end - r.pos} bytes after the item`, r.pos);
  return v;
}

/** Decodes a lone primary block (with its CRC check). @throws {BundleError} */
export function decodePrimaryBlock(bytes: Uint8Array, options: DecodeOptions = {}): PrimaryBlock {
  return single(bytes, options.lenient !== true, (r) => readPrimary(r, throwReport));
}

/**
 * Decodes a lone canonical block (with its CRC and known-type data checks). Unlike
 * {@link decodeBundle} it also accepts the pre-RFC form whose block-type-specific data is a bare
 * CBOR item (see {@link CanonicalBlock.unwrappedData}), which the shared vectors count as valid.
 * @throws {BundleError}
 */
export function decodeCanonicalBlock(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): CanonicalBlock {
  return single(bytes, options.lenient !== true, (r) => {
    const b = readCanonical(r, throwReport, true);
    checkKnownBlockData(b, throwReport, 0);
    return b;
  });
}

/** Decodes a lone CBOR-encoded EID. @throws {BundleError} */
export function decodeEid(bytes: Uint8Array): Eid {
  return single(bytes, true, readEid);
}

/** Decodes a lone creation timestamp `[time, sequence]`. @throws {BundleError} */
export function decodeCreationTimestamp(bytes: Uint8Array): { time: number; sequence: number } {
  return single(bytes, true, (r) => {
    if (r.arrayLength() !== 2)
      throw new BundleError('primary-length', 'creation timestamp is [time, sequence]', 0);
    return { time: r.uint(), sequence: r.uint() };
  });
}

/** Writes the CRC placeholder, then computes the CRC over the block and patches it in. */
function writeCrc(w: CborWriter, crcType: CrcType, start: number): void {
  if (crcType === CrcType.None) return;
  const n = crcType === CrcType.Crc16 ? 2 : 4;
  w.reserve(1 + n);
  w.byte(0x40 | n);
  for (let i = 0; i < n; i++) w.byte(0);
  const buf = w.buffer;
  const end = w.pos - n;
  if (crcType === CrcType.Crc16) {
    const c = crc16Zeroed(buf, start, end, 2);
    buf[end] = c >>> 8;
    buf[end + 1] = c & 0xff;
  } else {
    const c = crc32cZeroed(buf, start, end, 4);
    buf[end] = c >>> 24;
    buf[end + 1] = (c >>> 16) & 0xff;
    buf[end + 2] = (c >>> 8) & 0xff;
    buf[end + 3] = c & 0xff;
  }
}

/** Writes a primary block (deterministic CBOR, CRC computed). */
export function writePrimaryBlock(w: CborWriter, p: PrimaryBlock): void {
  const start = w.pos;
  const isFragment = (p.flags & BundleFlags.IsFragment) !== 0;
  w.array(8 + (isFragment ? 2 : 0) + (p.crcType === CrcType.None ? 0 : 1));
  w.uint(p.version);
  w.uint(p.flags);
  w.uint(p.crcType);
  writeEid(w, p.destination);
  writeEid(w, p.source);
  writeEid(w, p.reportTo);
  w.array(2);
  w.uint(p.creationTime);
  w.uint(p.sequence);
  w.uint(p.lifetimeMs);
  if (isFragment) {
    w.uint(p.fragmentOffset ?? 0);
    w.uint(p.totalAduLength ?? 0);
  }
  writeCrc(w, p.crcType, start);
}

/** Writes a canonical block (deterministic CBOR, CRC computed). */
export function writeCanonicalBlock(w: CborWriter, b: CanonicalBlock): void {
  const start = w.pos;
  w.array(b.crcType === CrcType.None ? 5 : 6);
  w.uint(b.type);
  w.uint(b.number);
  w.uint(b.flags);
  w.uint(b.crcType);
  if (b.unwrappedData === true) w.raw(b.data);
  else w.bytes(b.data);
  writeCrc(w, b.crcType, start);
}

/** Encodes a primary block alone (the form BPSec's IPPT and AAD use, RFC 9173 §3.7). */
export function encodePrimaryBlock(p: PrimaryBlock): Uint8Array {
  const w = new CborWriter(96);
  writePrimaryBlock(w, p);
  return w.finish();
}

/** Encodes a canonical block alone. */
export function encodeCanonicalBlock(b: CanonicalBlock): Uint8Array {
  const w = new CborWriter(b.data.length + 32);
  writeCanonicalBlock(w, b);
  return w.finish();
}

/**
 * Encodes a bundle: an indefinite-length array of deterministically encoded blocks, CRCs
 * computed with their value bytes zeroed (RFC 9171 §4.2.1). Does not validate: encode what
 * you built, decode to check.
 */
export function encodeBundle(bundle: Bundle): Uint8Array {
  // One scratch writer serves every (synchronous) encode; only the result is allocated.
  const w = scratch;
  w.reset(SCRATCH_BYTES_KEEP_MAX);
  w.byte(0x9f);
  writePrimaryBlock(w, bundle.primary);
  for (const b of bundle.blocks) writeCanonicalBlock(w, b);
  w.byte(0xff);
  return w.finish();
}

/** Largest scratch buffer kept between encodes; bigger ones are dropped after use. */
const SCRATCH_BYTES_KEEP_MAX = 1024 * 1024;
const scratch = new CborWriter(4096);

/** The payload block of a bundle (the last block). */
export function payloadBlock(bundle: Bundle): CanonicalBlock {
  const b = bundle.blocks[bundle.blocks.length - 1];
  if (b === undefined || b.type !== BlockType.Payload)
    throw new BundleError('payload-missing', 'bundle has no payload block', -1);
  return b;
}

/** Reads a Previous Node block's node ID (RFC 9171 §4.4.1). */
export function readPreviousNode(b: CanonicalBlock): Eid {
  return single(b.data, true, readEid);
}

/** Reads a Bundle Age block's age in ms (RFC 9171 §4.4.2). */
export function readBundleAge(b: CanonicalBlock): number {
  return single(b.data, true, (r) => r.uint());
}

/** Reads a Hop Count block `[limit, count]` (RFC 9171 §4.4.3). */
export function readHopCount(b: CanonicalBlock): { limit: number; count: number } {
  return single(b.data, true, (r) => {
    if (r.arrayLength() !== 2)
      throw new BundleError('block-data-malformed', 'hop count is [limit, count]', 0);
    const limit = r.uint();
    const count = r.uint();
    if (limit > 255)
      throw new BundleError(
        'block-data-malformed',
        'hop limit must be in 1..255 (RFC 9171 §4.4.3)',
        0,
      );
    return { limit, count };
  });
}

/** Encodes an EID as Previous Node block data. */
export function previousNodeData(eid: Eid): Uint8Array {
  const w = new CborWriter(64);
  writeEid(w, eid);
  return w.finish();
}

/** Encodes Bundle Age block data. */
export function bundleAgeData(ageMs: number): Uint8Array {
  const w = new CborWriter(16);
  w.uint(ageMs);
  return w.finish();
}

/** Encodes Hop Count block data. */
export function hopCountData(limit: number, count: number): Uint8Array {
  const w = new CborWriter(16);
  w.array(2);
  w.uint(limit);
  w.uint(count);
  return w.finish();
}

/** Finds a block by type. */
export function findBlock(bundle: Bundle, type: number): CanonicalBlock | undefined {
  return bundle.blocks.find((b) => b.type === type);
}

/** Replaces (or inserts before the payload) the one block of `type`. */
export function withBlock(bundle: Bundle, block: CanonicalBlock): Bundle {
  const others = bundle.blocks.filter((b) => b.type !== block.type);
  const payloadAt = others.length - 1;
  return {
    primary: bundle.primary,
    blocks: [...others.slice(0, payloadAt), block, ...others.slice(payloadAt)],
  };
}

/** The lowest block number not yet used in `bundle` (never 0 or 1). */
export function nextBlockNumber(bundle: Bundle): number {
  let n = 2;
  for (const b of bundle.blocks) if (b.number >= n) n = b.number + 1;
  return n;
}

/** DTN time (RFC 9171 §4.2.6): ms since 2000-01-01T00:00:00Z. */
export const DTN_EPOCH_UNIX_MS = 946_684_800_000;

/** Converts a Unix time in ms to DTN time. */
export function dtnTimeOf(unixMs: number): number {
  return Math.max(0, Math.floor(unixMs - DTN_EPOCH_UNIX_MS));
}

/** Options of {@link createBundle}. */
export interface CreateBundleInit {
  readonly source: Eid;
  readonly destination: Eid;
  readonly reportTo?: Eid;
  readonly payload: Uint8Array;
  /** DTN time in ms (see {@link dtnTimeOf}); 0 adds a Bundle Age block (§4.4.2). */
  readonly creationTime: number;
  readonly sequence: number;
  readonly lifetimeMs: number;
  readonly flags?: number;
  readonly crcType?: CrcType;
  /** Adds a Hop Count block with this limit. */
  readonly hopLimit?: number;
}

/** Builds a valid bundle (CRC-32C by default on every block). */
export function createBundle(init: CreateBundleInit): Bundle {
  const crcType = init.crcType ?? CrcType.Crc32c;
  const blocks: CanonicalBlock[] = [];
  let n = 2;
  if (init.hopLimit !== undefined)
    blocks.push({
      type: BlockType.HopCount,
      number: n++,
      flags: 0,
      crcType,
      data: hopCountData(init.hopLimit, 0),
    });
  if (init.creationTime === 0)
    blocks.push({
      type: BlockType.BundleAge,
      number: n++,
      flags: 0,
      crcType,
      data: bundleAgeData(0),
    });
  blocks.push({ type: BlockType.Payload, number: 1, flags: 0, crcType, data: init.payload });
  return {
    primary: {
      version: 7,
      flags: init.flags ?? 0,
      crcType,
      destination: init.destination,
      source: init.source,
      reportTo: init.reportTo ?? init.source,
      creationTime: init.creationTime,
      sequence: init.sequence,
      lifetimeMs: init.lifetimeMs,
    },
    blocks,
  };
}
