/**
 * The two CRCs of RFC 9171 §4.2.1: CRC-16/X-25 (reflected poly 0x8408, init and xorout 0xffff)
 * and CRC-32C Castagnoli (reflected poly 0x82f63b78, init and xorout 0xffffffff). Both are
 * table-driven; the CRC is computed over the whole block with the CRC value bytes zeroed, which
 * {@link crc16Zeroed} / {@link crc32cZeroed} do without copying the block.
 */

const CRC16_TABLE = new Uint16Array(256);
const CRC32C_TABLE = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c16 = i;
  let c32 = i;
  for (let k = 0; k < 8; k++) {
    c16 = c16 & 1 ? (c16 >>> 1) ^ 0x8408 : c16 >>> 1;
    c32 = c32 & 1 ? (c32 >>> 1) ^ 0x82f63b78 : c32 >>> 1;
  }
  CRC16_TABLE[i] = c16;
  CRC32C_TABLE[i] = c32 >>> 0;
}

function crc16Update(crc: number, data: Uint8Array, start: number, end: number): number {
  let c = crc;
  for (let i = start; i < end; i++)
    c = (c >>> 8) ^ (CRC16_TABLE[(c ^ (data[i] as number)) & 0xff] as number);
  return c;
}

function crc32cUpdate(crc: number, data: Uint8Array, start: number, end: number): number {
  let c = crc;
  for (let i = start; i < end; i++)
    c = (c >>> 8) ^ (CRC32C_TABLE[(c ^ (data[i] as number)) & 0xff] as number);
  return c;
}

/** CRC-16/X-25 of `data`. */
export function crc16X25(data: Uint8Array): number {
  return (crc16Update(0xffff, data, 0, data.length) ^ 0xffff) & 0xffff;
}

/** CRC-32C of `data`. */
export function crc32c(data: Uint8Array): number {
  return (crc32cUpdate(0xffffffff, data, 0, data.length) ^ 0xffffffff) >>> 0;
}

/** CRC-16/X-25 over `data[start, end)` followed by `zeros` zero bytes (the zeroed CRC value). */
export function crc16Zeroed(data: Uint8Array, start: number, end: number, zeros: number): number {
  let c = crc16Update(0xffff, data, start, end);
  for (let i = 0; i < zeros; i++) c = (c >>> 8) ^ (CRC16_TABLE[c & 0xff] as number);
  return (c ^ 0xffff) & 0xffff;
}

/** CRC-32C over `data[start, end)` followed by `zeros` zero bytes. */
export function crc32cZeroed(data: Uint8Array, start: number, end: number, zeros: number): number {
  let c = crc32cUpdate(0xffffffff, data, start, end);
  for (let i = 0; i < zeros; i++) c = (c >>> 8) ^ (CRC32C_TABLE[c & 0xff] as number);
  return (c ^ 0xffffffff) >>> 0;
}
