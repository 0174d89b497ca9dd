/**
 * The SecAgg client and server keep their per-neighbour state packed in typed arrays. When that
 * packing landed (commit 1aeb992), a differential test ran seeded sessions through the packed
 * code and through the unpacked code it replaced, and every message, server request and final sum
 * was byte-identical. The digests of those traces are pinned here: full SecAgg and SecAgg+,
 * clients vanishing at every stage, aborts included. Any change of a message byte, of a
 * message's order or of the sum fails this test; a deliberate wire change must update the table
 * (and say so). It also checks that an unmasking message's shares sit in a buffer holding only
 * the shares it reveals (views into the packed table would leak the unrevealed shares through
 * their buffer), and that the lazily built request maps behave as Maps.
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
  readonly messages: number;
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

/**
 * Pinned traces: mode, n, k, t, [client, round it vanishes before][], SHA-256 of every message,
 * request and sum in order, and the number of client messages. The first two are the fixed cases
 * of the differential test, the rest its random cases (fast-check seed 4).
 */
const PINNED: readonly [
  'full' | 'plus',
  number,
  number,
  number,
  readonly [number, number][],
  string,
  number,
][] = [
  [
    'full',
    10,
    9,
    5,
    [[6, 1]],
    '278c6a7a979495edda9f03a410db3c33375a6983882e609e1be7ff3986f2d7c7',
    46,
  ],
  [
    'full',
    11,
    10,
    6,
    [[10, 4]],
    'b58782333bd8085e7658a718ad9336e3ee9bf778aef95dfbdb9318d836b1e415',
    54,
  ],
  [
    'full',
    11,
    10,
    6,
    [[3, 0]],
    '11857d38a69b722874aa8b764d55d0d14373233a54c0dc7758ab8a80f2355e4c',
    50,
  ],
  ['full', 4, 3, 2, [], '07dc6253efb94b01394127aeac6f92501008bdb78e41586f1af96d867f2352b3', 20],
  ['full', 5, 4, 3, [], '90c0ed0980204920ba271d150e72a5d52d6a8ee2213ee0f3d8203b5bf40807c5', 25],
  ['full', 6, 5, 3, [], 'c3094efcc1d2a7d2a76d3a28cab6a9644e4da75188c815ddc2524f99034937d8', 30],
  [
    'full',
    7,
    6,
    4,
    [
      [2, 2],
      [5, 4],
    ],
    '99d327dc304a6ff6e21989bdbacbb56b3e881ea196bad8fd21d50f578f11b2e9',
    31,
  ],
  [
    'full',
    8,
    7,
    4,
    [[4, 0]],
    '7a0acf38681233993e42831c0a18c1d304e3d4b6f130234f99b2192c8aaf1675',
    35,
  ],
  [
    'plus',
    11,
    10,
    6,
    [[11, 4]],
    '8ee1d0d8caaba3155b6bc00d5683dd375f6a6e0dd389fd0d2edefc3e20704e8b',
    54,
  ],
  [
    'plus',
    11,
    10,
    6,
    [[4, 3]],
    '867cadbd2c40917ef7159d3424528893eea90a90caccb80b4a9bf900b02b79c4',
    53,
  ],
  [
    'plus',
    12,
    6,
    4,
    [
      [3, 2],
      [8, 3],
      [10, 1],
    ],
    '4ddcb5e36e495bcb2cedb10a976d89bf7b0c649fdd6e409be2808cbedc747aa8',
    51,
  ],
  [
    'plus',
    6,
    4,
    3,
    [
      [6, 1],
      [3, 1],
    ],
    '17d836aab3223391d8e21bca8ecd0565f90d6c7593fecafbabe1e6fd45017c30',
    22,
  ],
  ['plus', 6, 4, 3, [], 'b8d84553ed31cce324fbdb615f6f7295c8df28e83b83c5be95abf9a573478b7e', 30],
  [
    'plus',
    7,
    6,
    4,
    [[6, 1]],
    'cf6ef0b0557c07bf1a7f516c9dac7176ab69eed8414578d24113c114da1cde55',
    31,
  ],
];

describe('packed SecAgg state', () => {
  it.each(PINNED)(
    '%s n=%i k=%i t=%i, vanishing %j: the pinned trace',
    (mode, n, k, t, drops, digest, messages) => {
      const r = session(mode, n, k, t, new Map(drops));
      expect(r.messages).toBe(messages);
      expect(r.digest).toBe(digest);
    },
  );

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
