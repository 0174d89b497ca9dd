/**
 * A small, hand-written CBOR (RFC 8949) reader and writer for exactly what BPv7 needs.
 *
 * Why not a generic CBOR library: (1) bundles must re-encode byte-identically, so the encoder
 * must be deterministic (RFC 8949 §4.2.1: shortest heads, definite lengths) while the decoder
 * must tell a deterministic encoding from a merely valid one and keep the one indefinite-length
 * array RFC 9171 §4.1 requires; (2) CRCs (RFC 9171 §4.2.1) are computed over the exact block
 * bytes, which a generic decoder throws away; (3) hostile input must cost at most a bounded,
 * input-proportional allocation: byte strings are returned as views into the input (no copy),
 * nesting depth and item counts are capped, and no length field is trusted before the bytes it
 * announces are known to be present; (4) speed: a bundle decodes without building a generic
 * value tree, which is what makes ≥ 500k bundles/s possible on one core.
 */

import { BundleError } from './errors.ts';
import { CBOR_DEPTH_MAX, CBOR_ITEMS_MAX } from './limits.ts';

/** CBOR major types (RFC 8949 §3.1). */
export const MajorType = {
  Uint: 0,
  NegInt: 1,
  Bytes: 2,
  Text: 3,
  Array: 4,
  Map: 5,
  Tag: 6,
  Simple: 7,
} as const;

/** Marks an indefinite length in {@link CborReader.length}. */
export const INDEFINITE = -1;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/**
 * A cursor over CBOR bytes. In strict mode it rejects non-deterministic encodings (heads
 * longer than needed, RFC 8949 §4.2.1); lenient mode accepts any well-formed head.
 */
export class CborReader {
  pos: number;
  /** True once a non-shortest head was accepted in lenient mode. */
  nonDeterministic = false;

  constructor(
    readonly buf: Uint8Array,
    readonly strict: boolean,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  /** Throws a malformed-CBOR error at the current position. */
  fail(message: string, rule: 'cbor-malformed' | 'cbor-limit' = 'cbor-malformed'): never {
    throw new BundleError(rule, message, this.pos);
  }

  /** True when every byte has been consumed. */
  get done(): boolean {
    return this.pos >= this.end;
  }

  /** The major type of the next item, without consuming it. */
  peekMajor(): number {
    if (this.pos >= this.end) this.fail('unexpected end of input');
    return (this.buf[this.pos] as number) >> 5;
  }

  /** True when the next byte is the "break" stop code (0xff). */
  peekBreak(): boolean {
    return this.pos < this.end && this.buf[this.pos] === 0xff;
  }

  /** Consumes a break stop code. */
  readBreak(): void {
    if (!this.peekBreak()) this.fail('expected break (0xff)');
    this.pos++;
  }

  /**
   * Reads an item head of the expected major type and returns its argument, or
   * {@link INDEFINITE} when `allowIndefinite` and the head is indefinite.
   */
  head(major: number, allowIndefinite = false): number {
    const buf = this.buf;
    if (this.pos >= this.end) this.fail('unexpected end of input');
    const ib = buf[this.pos] as number;
    if (ib >> 5 !== major) this.fail(`expected major type ${major}, found ${ib >> 5}`);
    const info = ib & 0x1f;
    this.pos++;
    if (info < 24) return info;
    return this.argument(info, allowIndefinite);
  }

  private argument(info: number, allowIndefinite: boolean): number {
    const buf = this.buf;
    const p = this.pos;
    let v: number;
    let min: number;
    switch (info) {
      case 24:
        if (p + 1 > this.end) this.fail('truncated head');
        v = buf[p] as number;
        min = 24;
        this.pos = p + 1;
        break;
      case 25:
        if (p + 2 > this.end) this.fail('truncated head');
        v = ((buf[p] as number) << 8) | (buf[p + 1] as number);
        min = 0x100;
        this.pos = p + 2;
        break;
      case 26:
        if (p + 4 > this.end) this.fail('truncated head');
        v =
          (buf[p] as number) * 0x1000000 +
          (((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number));
        min = 0x10000;
        this.pos = p + 4;
        break;
      case 27: {
        if (p + 8 > this.end) this.fail('truncated head');
        const hi =
          (buf[p] as number) * 0x1000000 +
          (((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number));
        const lo =
          (buf[p + 4] as number) * 0x1000000 +
          (((buf[p + 5] as number) << 16) | ((buf[p + 6] as number) << 8) | (buf[p + 7] as number));
        // Integers are JavaScript numbers: values above 2^53 - 1 cannot be represented exactly
        // and are refused rather than silently rounded (documented limit, docs/dtn.md).
        if (hi > 0x1fffff) throw new BundleError('integer-range', 'integer above 2^53 - 1', p - 1);
        v = hi * 0x100000000 + lo;
        min = 0x100000000;
        this.pos = p + 8;
        break;
      }
      case 31:
        if (!allowIndefinite) this.fail('indefinite length not allowed here');
        return INDEFINITE;
      default:
        return this.fail(`reserved additional information ${info}`);
    }
    if (v < min) {
      if (this.strict)
        throw new BundleError(
          'cbor-non-deterministic',
          'integer or length not in its shortest form (RFC 8949 §4.2.1)',
          p - 1,
        );
      this.nonDeterministic = true;
    }
    return v;
  }

  /** Reads an unsigned integer. */
  uint(): number {
    return this.head(MajorType.Uint);
  }

  /** Reads a definite-length array header and returns its item count. */
  arrayLength(): number {
    return this.head(MajorType.Array);
  }

  /** Reads a byte string (definite length) as a view into the input: no copy. */
  bytes(): Uint8Array {
    const n = this.head(MajorType.Bytes);
    if (n > this.end - this.pos) this.fail('byte string runs past the end of input');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Reads a UTF-8 text string of at most `maxBytes` bytes. */
  text(maxBytes: number): string {
    const n = this.head(MajorType.Text);
    if (n > maxBytes) this.fail(`text string longer than ${maxBytes} bytes`, 'cbor-limit');
    if (n > this.end - this.pos) this.fail('text string runs past the end of input');
    const slice = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if ((slice[i] as number) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, slice as unknown as number[]);
    try {
      return utf8.decode(slice);
    } catch (cause) {
      void cause;
      return this.fail('text string is not valid UTF-8');
    }
  }

  /**
   * Skips one complete data item of any type, following at most `depth` levels of nesting
   * and {@link CBOR_ITEMS_MAX} items per container. Used for block-type-specific data the
   * agent does not interpret and for fields it ignores.
   */
  skip(depth = CBOR_DEPTH_MAX): void {
    if (depth <= 0) this.fail('nesting deeper than CBOR_DEPTH_MAX', 'cbor-limit');
    const major = this.peekMajor();
    switch (major) {
      case MajorType.Uint:
      case MajorType.NegInt:
        this.head(major);
        return;
      case MajorType.Bytes:
      case MajorType.Text: {
        const n = this.head(major, true);
        if (n === INDEFINITE) {
          let chunks = 0;
          while (!this.peekBreak()) {
            if (++chunks > CBOR_ITEMS_MAX) this.fail('too many string chunks', 'cbor-limit');
            if (this.peekMajor() !== major) this.fail('string chunk of the wrong type');
            this.skip(1 + 1);
          }
          this.readBreak();
          return;
        }
        if (n > this.end - this.pos) this.fail('string runs past the end of input');
        this.pos += n;
        return;
      }
      case MajorType.Array:
      case MajorType.Map: {
        const n = this.head(major, true);
        const per = major === MajorType.Map ? 2 : 1;
        if (n === INDEFINITE) {
          let items = 0;
          while (!this.peekBreak()) {
            if (++items > CBOR_ITEMS_MAX * per) this.fail('too many items', 'cbor-limit');
            this.skip(depth - 1);
          }
          this.readBreak();
          return;
        }
        if (n > CBOR_ITEMS_MAX) this.fail('too many items', 'cbor-limit');
        // Every item takes at least one byte: refuse counts the input cannot hold before looping.
        if (n * per > this.end - this.pos) this.fail('container runs past the end of input');
        for (let i = 0; i < n * per; i++) this.skip(depth - 1);
        return;
      }
      case MajorType.Tag:
        this.head(major);
        this.skip(depth - 1);
        return;
      default: {
        const ib = this.buf[this.pos] as number;
        const info = ib & 0x1f;
        this.pos++;
        if (info < 24) return;
        const extra = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : -1;
        if (extra < 0) this.fail('unexpected break or reserved simple value');
        if (extra > this.end - this.pos) this.fail('truncated simple value');
        this.pos += extra;
      }
    }
  }
}

const WRITER_BYTES_INITIAL = 256;

/** A growable CBOR writer that only produces deterministic encodings (RFC 8949 §4.2.1). */
export class CborWriter {
  private buf: Uint8Array;
  pos = 0;

  constructor(initialBytes = WRITER_BYTES_INITIAL) {
    this.buf = new Uint8Array(initialBytes);
  }

  /** Ensures room for `n` more bytes. */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** Writes a head in its shortest form. */
  head(major: number, value: number): void {
    this.reserve(9);
    const buf = this.buf;
    const m = major << 5;
    let p = this.pos;
    if (value < 24) buf[p++] = m | value;
    else if (value < 0x100) {
      buf[p++] = m | 24;
      buf[p++] = value;
    } else if (value < 0x10000) {
      buf[p++] = m | 25;
      buf[p++] = value >>> 8;
      buf[p++] = value & 0xff;
    } else if (value < 0x100000000) {
      buf[p++] = m | 26;
      buf[p++] = value >>> 24;
      buf[p++] = (value >>> 16) & 0xff;
      buf[p++] = (value >>> 8) & 0xff;
      buf[p++] = value & 0xff;
    } else {
      const hi = Math.floor(value / 0x100000000);
      const lo = value >>> 0;
      buf[p++] = m | 27;
      buf[p++] = hi >>> 24;
      buf[p++] = (hi >>> 16) & 0xff;
      buf[p++] = (hi >>> 8) & 0xff;
      buf[p++] = hi & 0xff;
      buf[p++] = lo >>> 24;
      buf[p++] = (lo >>> 16) & 0xff;
      buf[p++] = (lo >>> 8) & 0xff;
      buf[p++] = lo & 0xff;
    }
    this.pos = p;
  }

  /** Writes an unsigned integer. */
  uint(value: number): void {
    this.head(MajorType.Uint, value);
  }

  /** Writes a definite array header. */
  array(length: number): void {
    this.head(MajorType.Array, length);
  }

  /** Writes a byte string. */
  bytes(data: Uint8Array): void {
    this.head(MajorType.Bytes, data.length);
    this.raw(data);
  }

  /** Writes a text string. */
  text(s: string): void {
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      this.head(MajorType.Text, s.length);
      this.reserve(s.length);
      for (let i = 0; i < s.length; i++) this.buf[this.pos + i] = s.charCodeAt(i);
      this.pos += s.length;
      return;
    }
    this.bytesAs(MajorType.Text, utf8Encoder.encode(s));
  }

  private bytesAs(major: number, data: Uint8Array): void {
    this.head(major, data.length);
    this.raw(data);
  }

  /** Writes raw, already-encoded bytes. */
  raw(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** Writes one raw byte (e.g. 0x9f, 0xff). */
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  /** A view of the bytes written so far (valid until the next write). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /**
   * A copy of the bytes written so far. Small results are carved out of Node's pooled
   * allocator (Buffer.allocUnsafe) and returned as a plain Uint8Array view: allocating a fresh
   * ArrayBuffer per bundle costs more than encoding it.
   */
  finish(): Uint8Array {
    const n = this.pos;
    const pooled = Buffer.allocUnsafe(n);
    pooled.set(this.buf.subarray(0, n));
    return new Uint8Array(pooled.buffer, pooled.byteOffset, n);
  }

  /** Empties the writer for reuse, dropping a buffer grown past `keepBytesMax`. */
  reset(keepBytesMax: number): void {
    this.pos = 0;
    if (this.buf.length > keepBytesMax) this.buf = new Uint8Array(WRITER_BYTES_INITIAL);
  }

  /** The underlying buffer (valid until the next write that grows it). */
  get buffer(): Uint8Array {
    return this.buf;
  }
}

/** The encoded size of a head with this argument (for precomputing lengths). */
export function headBytes(value: number): number {
  return value < 24 ? 1 : value < 0x100 ? 2 : value < 0x10000 ? 3 : value < 0x100000000 ? 5 : 9;
}
