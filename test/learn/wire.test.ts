import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TRANSPORT_MESSAGE_BYTES_MAX } from '../../src/core/index.ts';
import {
  decodeFitReply,
  decodeFitRequest,
  encodeFitReply,
  encodeFitRequest,
  isLearnError,
} from '../../src/learn/index.ts';

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isLearnError(e) ? e.code : 'other';
  }
  return undefined;
}

describe('hierarchical wire format', () => {
  it('round-trips requests and replies', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true }), { maxLength: 300 }),
        fc.nat(),
        fc.string({ maxLength: 20 }),
        (xs, round, nonce) => {
          const params = Float32Array.from(xs);
          const req = decodeFitRequest(
            encodeFitRequest({ round, step: 1, nonce, deadlineMs: 100, proximalMu: 0 }, params),
          );
          expect(req.header.nonce).toBe(nonce);
          expect(Array.from(req.params)).toEqual(Array.from(params));
          const rep = decodeFitReply(
            encodeFitReply(
              {
                clientId: 'eu1.h1.p1.t01',
                round,
                nonce,
                weight: 3,
                numExamples: 3,
                tiles: 1,
                loss: 0.1,
                late: 0,
                rejected: 0,
              },
              params,
            ),
          );
          expect(rep.header.weight).toBe(3);
          expect(Array.from(rep.params)).toEqual(Array.from(params));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('oversized models are refused before they reach the transport', () => {
    const big = new Float32Array(TRANSPORT_MESSAGE_BYTES_MAX / 4);
    expect(
      code(() =>
        encodeFitRequest({ round: 1, step: 1, nonce: 'n', deadlineMs: 100, proximalMu: 0 }, big),
      ),
    ).toBe('LEARN_OVERSIZED');
    expect(code(() => decodeFitReply(new Uint8Array(TRANSPORT_MESSAGE_BYTES_MAX + 1)))).toBe(
      'LEARN_OVERSIZED',
    );
  });

  it('garbage, truncation and wrong kinds decode to LEARN_MALFORMED, never a crash', () => {
    const good = encodeFitRequest(
      { round: 1, step: 1, nonce: 'n', deadlineMs: 100, proximalMu: 0 },
      new Float32Array(4),
    );
    expect(code(() => decodeFitReply(good))).toBe('LEARN_MALFORMED');
    expect(code(() => decodeFitRequest(good.subarray(0, good.length - 2)))).toBe('LEARN_MALFORMED');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const c = code(() => decodeFitRequest(bytes));
        expect(c === undefined || c === 'LEARN_MALFORMED').toBe(true);
      }),
    );
  });
});
