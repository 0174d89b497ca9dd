// CPU-bound kernel (AssemblyScript): table-driven CRC-32 (IEEE 802.3, reflected polynomial
// 0xEDB88320, as in zlib and RFC 1952 §8) over a pseudo-random 16 KiB buffer. The buffer and
// the table are built once at start, so `run` can be called any number of times. Used by
// bench/kernel/fuel.bench.ts as a realistic fuel-metering workload (byte loads, table lookups).
import { log } from '../../../sdk/assemblyscript/index';

export const genesis_async_buffer: usize = memory.data(8192);
export const genesis_async_buffer_bytes: i32 = 8192;
const BUFFER_BYTES: i32 = 16384;
const table = new StaticArray<u32>(256);
const data = new StaticArray<u8>(BUFFER_BYTES);
let last: u32 = 0;

for (let n = 0; n < 256; n++) {
  let c = <u32>n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  table[n] = c;
}
let seed: u32 = 0x9e3779b9;
for (let i = 0; i < BUFFER_BYTES; i++) {
  seed ^= seed << 13;
  seed ^= seed >> 17;
  seed ^= seed << 5;
  data[i] = <u8>seed;
}

/** CRC-32 of the first `len` bytes of the buffer. */
export function crc32(len: i32): u32 {
  let crc: u32 = 0xffffffff;
  for (let i = 0; i < len; i++) {
    crc = unchecked(table[(crc ^ unchecked(data[i])) & 0xff]) ^ (crc >>> 8);
  }
  return crc ^ 0xffffffff;
}

/** Checksums `times` prefixes of the buffer (16 KiB down to 16 KiB − 7); mixes the results. */
export function run(times: i32): u32 {
  let acc: u32 = 0;
  for (let t = 0; t < times; t++) acc = rotl<u32>(acc, 5) ^ crc32(BUFFER_BYTES - (t & 7));
  last = acc;
  return acc;
}

export function genesis_main(): void {
  log('crc32 ' + crc32(BUFFER_BYTES).toString(16));
}

export function result(): u32 {
  return last;
}
