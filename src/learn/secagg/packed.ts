/**
 * Small helpers of the packed protocol state (client.ts, server.ts) and of messages that cross
 * threads as one buffer (server requests, the simulator's host workers).
 */

/** Index of `v` in the ascending array `a`, or −1 (binary search). */
export function sortedIndexOf(a: Uint32Array, v: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const x = a[mid] as number;
    if (x === v) return mid;
    if (x < v) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * A packer over one fresh buffer of `totalBytes`: each call copies its argument to the next free
 * bytes and returns the view of that copy, so a message built from many small arrays is posted
 * (or transferred) as one buffer instead of being cloned array by array.
 */
export function bytePacker(totalBytes: number): (x: Uint8Array) => Uint8Array {
  const buf = new Uint8Array(totalBytes);
  let at = 0;
  return (x) => {
    buf.set(x, at);
    at += x.length;
    return buf.subarray(at - x.length, at);
  };
}
