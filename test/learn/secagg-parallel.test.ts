import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CryptoRng, SeededRng } from '../../src/core/index.ts';
import {
  applyPrgMask,
  type ConsistencyRequest,
  channelKey,
  channelKeys,
  closeMaskWorkers,
  firstInvalidEd25519,
  generateEd25519,
  generateX25519,
  isSecAggError,
  MaskAccumulator,
  type MaskedInputRequest,
  type MaskJob,
  MaskJobBuilder,
  maskThreadsFor,
  pairwiseSeed,
  runMaskJob,
  SECAGG_MASK_THREADS_MAX,
  SECAGG_PARALLEL_WORDS_MIN,
  SecAggClient,
  SecAggServer,
  type SecAggSessionConfig,
  type ShareRequest,
  signEd25519,
  type UnmaskRequest,
  x25519Shared,
} from '../../src/learn/secagg/index.ts';

afterAll(async () => {
  await closeMaskWorkers();
});

const same = (a: Uint32Array, b: Uint32Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );

interface Setup {
  readonly session: Uint8Array;
  readonly base: Uint32Array;
  readonly seeds: { seed: Uint8Array; sign: 1 | -1 }[];
  readonly pairs: { own: number; peer: number; sign: 1 | -1 }[];
  readonly keys: Map<number, ReturnType<typeof generateX25519>>;
}

/** A random job: a few self seeds and pairs between a few "dropped" and "surviving" ids. */
function setup(seed: number, words: number): Setup {
  const rng = new SeededRng(seed);
  const session = rng.fill(new Uint8Array(16));
  const base = Uint32Array.from({ length: words }, () => rng.nextU32());
  const keys = new Map<number, ReturnType<typeof generateX25519>>();
  for (let id = 1; id <= 6; id++) keys.set(id, generateX25519(rng));
  const seeds = Array.from({ length: rng.int(0, 3) }, () => ({
    seed: rng.fill(new Uint8Array(32)),
    sign: (rng.nextFloat() < 0.5 ? 1 : -1) as 1 | -1,
  }));
  const pairs: Setup['pairs'] = [];
  for (const own of [1, 2])
    for (const peer of [3, 4, 5, 6])
      if (rng.nextFloat() < 0.8) pairs.push({ own, peer, sign: own < peer ? 1 : -1 });
  return { session, base, seeds, pairs, keys };
}

/** The reference: the scalar Int32Array PRG path of prg.ts, one mask at a time. */
function reference(s: Setup): Uint32Array {
  const out = Uint32Array.from(s.base);
  for (const { seed, sign } of s.seeds) applyPrgMask(out, seed, sign);
  for (const { own, peer, sign } of s.pairs) {
    const a = s.keys.get(own);
    const b = s.keys.get(peer);
    if (a === undefined || b === undefined) throw new Error('keys');
    applyPrgMask(
      out,
      pairwiseSeed(x25519Shared(a.privateKey, b.publicRaw), s.session, own, peer),
      sign,
    );
  }
  return out;
}

function viaJob(s: Setup, threads: number): Uint32Array {
  const job = new MaskJobBuilder(s.session);
  for (const { seed, sign } of s.seeds) job.addSeed(seed, sign);
  const privs = new Map<number, number>();
  for (const { own, peer, sign } of s.pairs) {
    const a = s.keys.get(own);
    const b = s.keys.get(peer);
    if (a === undefined || b === undefined) throw new Error('keys');
    const p = privs.get(own) ?? job.addPrivate(a.privateRaw);
    privs.set(own, p);
    job.addPair(p, job.addPublic(peer, b.publicRaw), own, peer, sign);
  }
  const acc = new MaskAccumulator(s.base.length);
  acc.addVector(s.base);
  runMaskJob(acc, job.build(), threads, { callerWorks: threads === 1 || s.pairs.length % 2 === 0 });
  return acc.result();
}

describe('mask jobs on worker threads', () => {
  it('give the scalar reference sum bit for bit, whatever the thread count (lengths not multiples of 4)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer(),
        fc.integer({ min: 1, max: 3 }),
        (words, seed, threads) => {
          const s = setup(seed, words);
          const ref = reference(s);
          expect(same(viaJob(s, 1), ref)).toBe(true);
          expect(same(viaJob(s, threads), ref)).toBe(true);
        },
      ),
      { numRuns: 12 },
    );
  });

  it('split over workers equals the single thread on a multi-chunk vector with many tasks', () => {
    const s = setup(7, 50_003);
    const one = viaJob(s, 1);
    expect(same(viaJob(s, 2), one)).toBe(true);
    expect(same(viaJob(s, 4), one)).toBe(true);
    // A job with more threads than tasks still works (idle workers are closed out).
    const tiny = { ...s, pairs: s.pairs.slice(0, 1), seeds: [] };
    expect(same(viaJob(tiny, 4), reference(tiny))).toBe(true);
  });

  it('workers alone (the caller only waits) give the same sum, and report their tasks', () => {
    const s = setup(11, 9_999);
    const job = (): MaskJob => {
      const b = new MaskJobBuilder(s.session);
      for (const { seed, sign } of s.seeds) b.addSeed(seed, sign);
      const a = s.keys.get(1);
      if (a === undefined) throw new Error('keys');
      const p = b.addPrivate(a.privateRaw);
      for (const peer of [3, 4, 5]) {
        const k = s.keys.get(peer);
        if (k === undefined) throw new Error('keys');
        b.addPair(p, b.addPublic(peer, k.publicRaw), 1, peer, -1);
      }
      return b.build();
    };
    const one = new MaskAccumulator(s.base.length);
    runMaskJob(one, job(), 1);
    for (const threads of [2, 3]) {
      const acc = new MaskAccumulator(s.base.length);
      const j = job();
      const stats = runMaskJob(acc, j, threads, { callerWorks: false });
      expect(stats.workerTasks).toBe(j.seedSigns.length + 3);
      expect(stats.recomputedTasks).toBe(0);
      expect(same(acc.result(), one.result())).toBe(true);
    }
  });

  it('an invalid peer key fails with SECAGG_MALFORMED on any thread count', () => {
    const s = setup(3, 10_000);
    const job = new MaskJobBuilder(s.session);
    const a = s.keys.get(1);
    if (a === undefined) throw new Error('keys');
    const p = job.addPrivate(a.privateRaw);
    // The point of order 1 (u = 1 … as 0 it is small-order): X25519 output is all zero, refused.
    const small = new Uint8Array(32);
    for (let i = 0; i < 4; i++) job.addPair(p, job.addPublic(10 + i, small), 1, 10 + i, 1);
    const built = job.build();
    for (const [threads, callerWorks] of [
      [1, true],
      [2, true],
      [2, false], // the worker fails, the caller redoes its tasks and meets the same error
    ] as const) {
      let err: unknown;
      try {
        runMaskJob(new MaskAccumulator(1000), built, threads, { callerWorks });
      } catch (e) {
        err = e;
      }
      expect(isSecAggError(err, 'SECAGG_MALFORMED')).toBe(true);
    }
    expect(() => job.addPublic(99, new Uint8Array(31))).toThrow(/invalid/);
  });

  it('picks threads: explicit requests are clamped, small jobs stay on one thread', () => {
    expect(maskThreadsFor(10, 100)).toBe(1);
    expect(maskThreadsFor(1, SECAGG_PARALLEL_WORDS_MIN)).toBeGreaterThanOrEqual(1);
    expect(maskThreadsFor(1, 1, 3)).toBe(3);
    expect(maskThreadsFor(1, 1, 1000)).toBe(SECAGG_MASK_THREADS_MAX);
    expect(() => maskThreadsFor(1, 1, 0)).toThrow();
  });

  it('keys from the CSPRNG path (OpenSSL-generated) work in workers too', () => {
    const rng = new CryptoRng();
    const a = generateX25519(rng);
    const b = generateX25519(rng);
    const session = rng.fill(new Uint8Array(16));
    const job = new MaskJobBuilder(session);
    const p = job.addPrivate(a.privateRaw);
    job.addPair(p, job.addPublic(2, b.publicRaw), 1, 2, 1);
    job.addPair(p, job.addPublic(3, b.publicRaw), 1, 3, -1);
    const acc = new MaskAccumulator(4099);
    runMaskJob(acc, job.build(), 2);
    const ref = new Uint32Array(4099);
    const shared = x25519Shared(a.privateKey, b.publicRaw);
    applyPrgMask(ref, pairwiseSeed(shared, session, 1, 2), 1);
    applyPrgMask(ref, pairwiseSeed(shared, session, 1, 3), -1);
    expect(same(acc.result(), ref)).toBe(true);
  });
});

describe('key jobs on worker threads', () => {
  const rng = new SeededRng(5);
  const session = rng.fill(new Uint8Array(16));
  const own = generateX25519(rng);
  const peers = Array.from({ length: 9 }, (_, i) => ({ id: i + 2, key: generateX25519(rng) }));

  it('channel keys equal channelKey(X25519) on any thread count, workers alone included', () => {
    const expected = peers.map((p) =>
      channelKey(x25519Shared(own.privateKey, p.key.publicRaw), session),
    );
    const ps = peers.map((p) => ({ id: p.id, publicRaw: p.key.publicRaw }));
    for (const [threads, callerWorks] of [
      [1, true],
      [2, true],
      [3, false],
    ] as const) {
      let meanwhile = 0;
      const keys = channelKeys(own.privateRaw, ps, session, threads, {
        callerWorks,
        meanwhile: () => {
          meanwhile++;
        },
      });
      expect(meanwhile).toBe(1);
      expect(keys.map((k) => Buffer.from(k).toString('hex'))).toEqual(
        expected.map((k) => Buffer.from(k).toString('hex')),
      );
    }
  });

  it('a small-order or short peer key fails with SECAGG_MALFORMED naming that peer', () => {
    const ps = peers.map((p) => ({ id: p.id, publicRaw: p.key.publicRaw }));
    ps[4] = { id: 77, publicRaw: new Uint8Array(32) };
    for (const threads of [1, 2]) {
      let err: unknown;
      try {
        channelKeys(own.privateRaw, ps, session, threads, { callerWorks: threads === 1 });
      } catch (e) {
        err = e;
      }
      expect(isSecAggError(err, 'SECAGG_MALFORMED')).toBe(true);
      expect(String(err)).toMatch(/client 77/);
    }
    expect(() =>
      channelKeys(own.privateRaw, [{ id: 5, publicRaw: new Uint8Array(31) }], session, 2),
    ).toThrow(/client 5/);
    // A failing `meanwhile` abandons the job and surfaces its own error.
    expect(() =>
      channelKeys(own.privateRaw, ps.slice(0, 3), session, 2, {
        meanwhile: () => {
          throw new Error('meanwhile failed');
        },
      }),
    ).toThrow(/meanwhile failed/);
  });

  it('finds the first invalid Ed25519 signature, whatever the split', () => {
    const msg = rng.fill(new Uint8Array(32));
    const signers = Array.from({ length: 12 }, () => generateEd25519(rng));
    const items = signers.map((k) => ({
      publicRaw: k.publicRaw,
      signature: signEd25519(k.privateKey, msg),
    }));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.option(fc.integer({ min: 0, max: 11 }), { nil: undefined }),
        fc.boolean(),
        (threads, broken, shortSig) => {
          const its = items.map((it) => ({ ...it }));
          if (broken !== undefined) {
            const sig = Uint8Array.from((its[broken] as (typeof its)[number]).signature);
            if (shortSig)
              its[broken] = {
                ...(its[broken] as (typeof its)[number]),
                signature: sig.subarray(1),
              };
            else {
              sig[7] = (sig[7] as number) ^ 1;
              its[broken] = { ...(its[broken] as (typeof its)[number]), signature: sig };
            }
          }
          expect(firstInvalidEd25519(msg, its, threads, { callerWorks: threads === 1 })).toBe(
            broken ?? -1,
          );
        },
      ),
      { numRuns: 10 },
    );
    // Signatures over another message are all invalid: the first is reported.
    expect(firstInvalidEd25519(new Uint8Array(32), items, 2)).toBe(0);
  });
});

/** Drives a full session by hand; clients in `dropAtMask` vanish before round 2. */
function session(
  n: number,
  t: number,
  d: number,
  seed: number,
  dropAtMask: ReadonlySet<number>,
  maskThreads: number,
): { sum: Uint32Array; ys: Map<number, Uint32Array>; expected: Uint32Array; pairs: number } {
  const rng = new SeededRng(seed);
  const config: SecAggSessionConfig = {
    sessionId: rng.fill(new Uint8Array(16)),
    mode: 'full',
    n,
    t,
    k: n - 1,
    vectorLength: d,
  };
  const server = new SecAggServer({ config, rng, maskThreads });
  const clients = Array.from(
    { length: n },
    (_, i) => new SecAggClient({ id: i + 1, config, rng, maskThreads }),
  );
  const inputs = clients.map(() => Uint32Array.from({ length: d }, () => rng.nextU32()));
  for (const c of clients) server.receive(c.advertise());
  const shareReqs = server.closeAdvertise();
  for (const c of clients) server.receive(c.share(shareReqs.get(c.id) as ShareRequest));
  const maskReqs = server.closeShare();
  const ys = new Map<number, Uint32Array>();
  const expected = new Uint32Array(d);
  for (const c of clients) {
    if (dropAtMask.has(c.id)) continue;
    const x = inputs[c.id - 1] as Uint32Array;
    const m = c.maskInput(maskReqs.get(c.id) as MaskedInputRequest, x);
    ys.set(c.id, m.y);
    for (let j = 0; j < d; j++) expected[j] = ((expected[j] as number) + (x[j] as number)) >>> 0;
    server.receive(m);
  }
  const live = clients.filter((c) => !dropAtMask.has(c.id));
  const consReqs = server.closeMaskedInput();
  for (const c of live) server.receive(c.consistency(consReqs.get(c.id) as ConsistencyRequest));
  const unmaskReqs = server.closeConsistency();
  for (const c of live) server.receive(c.unmask(unmaskReqs.get(c.id) as UnmaskRequest));
  const sum = server.closeUnmask();
  return { sum, ys, expected, pairs: server.stats.pairMasksRecovered };
}

describe('protocol with parallel masking', () => {
  it('client masked vectors and the server sum are identical with 1 and 3 threads, under dropouts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 5, max: 8 }), fc.integer(), (n, seed) => {
        const t = n - 3;
        const drop = new Set([1 + (Math.abs(seed) % n), 1 + ((Math.abs(seed) + 3) % n)]);
        const d = 3001;
        const a = session(n, t, d, seed, drop, 1);
        const b = session(n, t, d, seed, drop, 3);
        expect(a.pairs).toBeGreaterThan(0);
        expect(same(a.sum, a.expected)).toBe(true);
        expect(same(b.sum, a.sum)).toBe(true);
        for (const [id, y] of a.ys) expect(same(b.ys.get(id) as Uint32Array, y)).toBe(true);
      }),
      { numRuns: 4 },
    );
  });
});
