/** Shard frames built in place, the frame pool, and stripes encoded into caller buffers. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeStripe,
  FRAME_POOL_FRAMES_MAX,
  FramePool,
  ReedSolomon,
  rawCid,
  reedSolomonCodec,
  shardLength,
} from '../../src/store/index.ts';
import { allocFrame, decodeRequest } from '../../src/store/protocol.ts';
import { encodeStripeInto, joinParts, stripeParts } from '../../src/store/stripe.ts';

describe('frames built in place', () => {
  it('a put frame filled in place decodes to its header and bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 5000 }), (data) => {
        const header = {
          block: rawCid(data).toString(),
          index: 3,
          k: 4,
          m: 2,
          blockBytes: data.length * 4,
          profile: 'pod-4+2',
        };
        const pool = new FramePool();
        const { frame, tail } = allocFrame({ op: 'put', header }, data.length, (n) => pool.take(n));
        tail.set(data);
        const req = decodeRequest(frame);
        expect(req).toMatchObject({ op: 'put', header });
        expect(Buffer.compare(Buffer.from((req as { data: Uint8Array }).data), data)).toBe(0);
      }),
      { numRuns: 50 },
    );
  });

  it('the pool reuses a slab only for its capacity class and keeps a bounded number', () => {
    const pool = new FramePool();
    const a = pool.take(300_000);
    expect(a.length).toBe(300_000);
    pool.give(a);
    const b = pool.take(290_000);
    expect(b.buffer).toBe(a.buffer);
    const c = pool.take(290_000);
    expect(c.buffer).not.toBe(a.buffer);
    pool.give(b);
    expect(pool.take(10).buffer).not.toBe(a.buffer); // another capacity class
    // A view that is not a whole pooled slab is never taken in.
    pool.give(new Uint8Array(new ArrayBuffer(300_000)).subarray(10));
    expect(pool.take(300_000).buffer).toBe(a.buffer);
    expect(pool.take(300_000).buffer).not.toBe(a.buffer);
    const many = Array.from({ length: FRAME_POOL_FRAMES_MAX + 10 }, () => pool.take(70_000));
    for (const f of many) pool.give(f);
    const back = new Set(many.map((f) => f.buffer));
    let reused = 0;
    for (let i = 0; i < FRAME_POOL_FRAMES_MAX + 10; i++)
      if (back.has(pool.take(70_000).buffer as ArrayBuffer)) reused++;
    expect(reused).toBe(FRAME_POOL_FRAMES_MAX);
  });
});

describe('stripes into caller buffers', () => {
  it('encodeStripeInto gives the shards of encodeStripe; stripeParts views rebuild the block', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        (block, k, m, withInto) => {
          const rs = new ReedSolomon(k, m);
          // Also the path of a codec without encodeInto.
          const codec = withInto
            ? rs
            : { encode: (d: Uint8Array[]) => rs.encode(d), reconstruct: rs.reconstruct.bind(rs) };
          const want = encodeStripe(reedSolomonCodec(k, m), block, k, m);
          const len = shardLength(block.length, k);
          const bufs = Array.from({ length: k + m }, () => new Uint8Array(len).fill(0xee));
          encodeStripeInto(codec, block, bufs, k, m);
          bufs.forEach((b, i) => {
            expect(Buffer.compare(Buffer.from(b), Buffer.from(want[i] as Uint8Array))).toBe(0);
          });
          const parts = stripeParts(bufs, k, block.length);
          expect(Buffer.compare(Buffer.from(joinParts(parts)), Buffer.from(block))).toBe(0);
          expect(parts.every((p) => p.length > 0)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});
