/**
 * The SecAgg client and server keep their per-neighbour state packed in typed arrays. These
 * tests pin the wire bytes: every message of two seeded sessions (full SecAgg and SecAgg+, with
 * clients vanishing at several stages), server requests and the final sum included, hashes to
 * the digest the unpacked implementation (commit f48320f) produced. Any change of a message
 * byte, of a message's order or of the sum fails them. They also check that an unmasking
 * message's shares sit in a buffer holding only the shares it reveals (a packed table shared
 * with the unrevealed shares would leak them through the views' buffer).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  encodeSecAggMessage,
  SecAggClient,
  type SecAggClientMessage,
  SecAggServer,
  type SecAggServerMessage,
  type SecAggSessionConfig,
  shamirShareLength,
  type UnmaskMsg,
} from '../../src/learn/secagg/index.ts';

const D = 50;

interface Run {
  readonly digest: string;
  readonly unmasks: UnmaskMsg[];
}

/** Runs one seeded session in process; client `id` vanishes before round `drops.get(id)`. */
function session(
  mode: 'full' | 'plus',
  n: number,
  k: number,
  t: number,
  drops: ReadonlyMap<number, number>,
): Run {
  const rng = new SeededRng(77);
  const config: SecAggSessionConfig = {
    sessionId: rng.fill(new Uint8Array(16)),
    mode,
    n,
    t,
    k,
    vectorLength: D,
  };
  const server = new SecAggServer({ config, rng });
  const clients = Array.from({ length: n }, (_, i) => new SecAggClient({ id: i + 1, config, rng }));
  const h = createHash('sha256');
  const unmasks: UnmaskMsg[] = [];
  let requests = new Map<number, SecAggServerMessage>();
  for (let round = 0; round < 5; round++) {
    for (const c of clients) {
      const d = drops.get(c.id);
      if (d !== undefined && d <= round) continue;
      const req = requests.get(c.id);
      if (round > 0 && req === undefined) continue;
      let m: SecAggClientMessage;
      if (round === 0) m = c.advertise();
      else if (req?.kind === 'share-request') m = c.share(req);
      else if (req?.kind === 'masked-input-request')
        m = c.maskInput(
          req,
          Uint32Array.from({ length: D }, (_, j) => c.id * 1000 + j),
        );
      else if (req?.kind === 'consistency-request') m = c.consistency(req);
      else if (req?.kind === 'unmask-request') {
        m = c.unmask(req);
        unmasks.push(m);
      } else throw new Error(`no request for ${c.id} in round ${round}`);
      h.update(encodeSecAggMessage(m));
      server.receive(m);
    }
    const closed =
      round === 0
        ? server.closeAdvertise()
        : round === 1
          ? server.closeShare()
          : round === 2
            ? server.closeMaskedInput()
            : round === 3
              ? server.closeConsistency()
              : server.closeUnmask();
    if (closed instanceof Uint32Array) h.update(new Uint8Array(closed.buffer));
    else {
      requests = closed;
      for (const id of [...closed.keys()].sort((a, b) => a - b))
        h.update(encodeSecAggMessage(closed.get(id) as SecAggServerMessage));
    }
  }
  return { digest: h.digest('hex'), unmasks };
}

describe('packed SecAgg state', () => {
  it('full SecAgg: byte-identical messages, requests and sum (2 vanish: before masking, before unmasking)', () => {
    const r = session(
      'full',
      7,
      6,
      4,
      new Map([
        [2, 2],
        [5, 4],
      ]),
    );
    expect(r.digest).toBe('57c84a56ba9d0ed43b2fc6b402d5f849af2742f10b66bbe919107a478a83f9e2');
  });

  it('SecAgg+: byte-identical messages, requests and sum (3 vanish at rounds 1, 2, 3)', () => {
    const r = session(
      'plus',
      12,
      6,
      4,
      new Map([
        [3, 2],
        [8, 3],
        [10, 1],
      ]),
    );
    expect(r.digest).toBe('3ddcb4876aea809163000d1951148b3acfc50dc9277b27a5af20c9e28a8bba3b');
  });

  it('an unmasking message carries exactly the shares it reveals, nothing else in their buffer', () => {
    const words = shamirShareLength(32);
    const r = session(
      'plus',
      12,
      6,
      4,
      new Map([
        [3, 2],
        [8, 3],
      ]),
    );
    expect(r.unmasks.length).toBeGreaterThan(0);
    let keyShares = 0;
    for (const m of r.unmasks) {
      const all = [...m.selfShares, ...m.keyShares];
      const buffers = new Set(all.map((s) => s.share.buffer));
      expect(buffers.size).toBe(1);
      const [buffer] = buffers;
      expect(buffer?.byteLength).toBe(all.length * words * 4);
      keyShares += m.keyShares.length;
    }
    // Client 3 dropped after sharing: its neighbours reveal key shares, never its b shares.
    expect(keyShares).toBeGreaterThan(0);
  });
});
