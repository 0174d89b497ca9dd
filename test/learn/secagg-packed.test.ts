/**
 * The SecAgg client and server keep their per-neighbour state packed in typed arrays. A
 * differential test: every message of seeded sessions (full SecAgg and SecAgg+, clients
 * vanishing at every stage), server requests and the final sum included, is byte-identical to
 * what the unpacked implementation (test/learn/fixtures/unpacked-*.ts, the code of commit
 * f48320f) produces with the same seeds. Any change of a message byte, of a message's order or
 * of the sum fails it. It also checks that an unmasking message's shares sit in a buffer holding
 * only the shares it reveals (views into the packed table would leak the unrevealed shares
 * through their buffer).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
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
import { SecAggClient as UnpackedClient } from './fixtures/unpacked-client.ts';
import { SecAggServer as UnpackedServer } from './fixtures/unpacked-server.ts';

const D = 50;

interface Run {
  readonly digest: string;
  readonly unmasks: UnmaskMsg[];
  readonly messages: number;
}

type Impl = 'packed' | 'unpacked';

/** Runs one seeded session in process; client `id` vanishes before round `drops.get(id)`. */
function session(
  impl: Impl,
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
  const server =
    impl === 'packed'
      ? new SecAggServer({ config, rng })
      : (new UnpackedServer({ config, rng }) as unknown as SecAggServer);
  const clients = Array.from({ length: n }, (_, i) =>
    impl === 'packed'
      ? new SecAggClient({ id: i + 1, config, rng })
      : (new UnpackedClient({ id: i + 1, config, rng }) as unknown as SecAggClient),
  );
  let messages = 0;
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
      messages++;
      server.receive(m);
    }
    let closed: Map<number, SecAggServerMessage> | Uint32Array;
    try {
      closed =
        round === 0
          ? server.closeAdvertise()
          : round === 1
            ? server.closeShare()
            : round === 2
              ? server.closeMaskedInput()
              : round === 3
                ? server.closeConsistency()
                : server.closeUnmask();
    } catch (e) {
      // An abort is part of the trace too.
      h.update(`abort ${(e as { code?: string }).code}`);
      break;
    }
    if (closed instanceof Uint32Array) h.update(new Uint8Array(closed.buffer));
    else {
      requests = closed;
      for (const id of [...closed.keys()].sort((a, b) => a - b))
        h.update(encodeSecAggMessage(closed.get(id) as SecAggServerMessage));
    }
  }
  return { digest: h.digest('hex'), unmasks, messages };
}

/** Both implementations over the same seeds: identical traces. */
function same(
  mode: 'full' | 'plus',
  n: number,
  k: number,
  t: number,
  drops: ReadonlyMap<number, number>,
): Run {
  const packed = session('packed', mode, n, k, t, drops);
  const unpacked = session('unpacked', mode, n, k, t, drops);
  expect(packed.messages).toBe(unpacked.messages);
  expect(packed.digest).toBe(unpacked.digest);
  return packed;
}

describe('packed SecAgg state', () => {
  it('full SecAgg: byte-identical messages, requests and sum (2 vanish: before masking, before unmasking)', () => {
    const r = same(
      'full',
      7,
      6,
      4,
      new Map([
        [2, 2],
        [5, 4],
      ]),
    );
    expect(r.messages).toBeGreaterThan(25);
  });

  it('SecAgg+: byte-identical messages, requests and sum (3 vanish at rounds 1, 2, 3)', () => {
    same(
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
  });

  it('random sessions and dropouts, including aborts: byte-identical traces', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: 11 }),
        fc.boolean(),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 11 }), fc.integer({ min: 0, max: 4 })), {
          maxLength: 4,
        }),
        (n, full, dropList) => {
          const k = full ? n - 1 : Math.max(2, (n - 1) & ~1);
          const t = Math.max(2, Math.ceil((k + 1) / 2));
          const drops = new Map(dropList.filter(([id]) => id <= n));
          same(full ? 'full' : 'plus', n, full ? n - 1 : k, t, drops);
        },
      ),
      { numRuns: 12, seed: 4 },
    );
  });

  it('an unmasking message carries exactly the shares it reveals, nothing else in their buffer', () => {
    const words = shamirShareLength(32);
    const r = session(
      'packed',
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

  it('requests built on demand behave as a Map: size, order, has/get, entries, set, delete, clear', () => {
    const rng = new SeededRng(3);
    const config: SecAggSessionConfig = {
      sessionId: rng.fill(new Uint8Array(16)),
      mode: 'plus',
      n: 6,
      t: 3,
      k: 4,
      vectorLength: 3,
    };
    const server = new SecAggServer({ config, rng });
    const clients = Array.from(
      { length: 6 },
      (_, i) => new SecAggClient({ id: i + 1, config, rng }),
    );
    for (const c of clients) server.receive(c.advertise());
    const shareReqs = server.closeAdvertise();
    expect(shareReqs).toBeInstanceOf(Map);
    expect(shareReqs.size).toBe(6);
    expect([...shareReqs.keys()]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...shareReqs].map(([id, r]) => [id, r.to])).toEqual(
      [...shareReqs.keys()].map((id) => [id, id]),
    );
    for (const c of clients) if (c.id !== 4) server.receive(c.share(shareReqs.get(c.id) as never));
    const maskReqs = server.closeShare();
    // Client 4 never shared: it gets no request, and nobody gets its ciphertext.
    expect(maskReqs.has(4)).toBe(false);
    expect(maskReqs.get(4)).toBeUndefined();
    expect(maskReqs.size).toBe(5);
    const one = maskReqs.get(1);
    expect(one).toEqual(maskReqs.get(1));
    expect(one?.ciphertexts.some((c) => c.from === 4)).toBe(false);
    expect([...maskReqs.values()]).toEqual([...maskReqs.keys()].map((id) => maskReqs.get(id)));
    const seen: number[] = [];
    maskReqs.forEach((r, id) => {
      expect(r.to).toBe(id);
      seen.push(id);
    });
    expect(seen).toEqual([...maskReqs.keys()]);
    const forged = { ...(one as NonNullable<typeof one>), ciphertexts: [] };
    maskReqs.set(1, forged);
    expect(maskReqs.get(1)).toBe(forged);
    expect(maskReqs.delete(2)).toBe(true);
    expect(maskReqs.has(2)).toBe(false);
    expect(maskReqs.size).toBe(4);
    maskReqs.clear();
    expect(maskReqs.size).toBe(0);
    expect([...maskReqs]).toEqual([]);
  });
});
