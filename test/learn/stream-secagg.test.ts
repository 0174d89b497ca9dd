/**
 * The streaming secure-aggregation session (masked inputs produced on demand and summed on
 * receipt) against the session that holds every input: same sum, same survivors, same aborts,
 * and memory that does not grow with the number of clients.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  runSecAggSession,
  runStreamingSecAggSession,
  SECAGG_STAGES,
  SecAggClient,
  SecAggServer,
  type SecAggSessionConfig,
  type SecAggStage,
  secAggSessionConfig,
} from '../../src/learn/secagg/index.ts';
import { config, plainSum, randomInputs } from './secagg-fixture.ts';

const stageArb = fc.constantFrom<SecAggStage>(...SECAGG_STAGES);

describe('streaming secure aggregation session', () => {
  it('gives exactly the sum, survivors and recoveries of the holding session, dropouts at every stage within the threshold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<'full' | 'plus'>('full', 'plus'),
        fc.integer({ min: 5, max: 12 }),
        fc.integer(),
        fc.array(fc.tuple(fc.nat(), stageArb), { maxLength: 10 }),
        fc.integer({ min: 1, max: 5 }),
        async (mode, n, seed, rawDrops, batch) => {
          const r0 = new SeededRng(seed);
          // SecAgg+ needs an even k < n − 1 (else the graph is complete); t ≤ k.
          const k = mode === 'full' ? n - 1 : 2 * r0.int(1, Math.floor((n - 2) / 2));
          const t = r0.int(Math.max(1, Math.ceil(k / 2)), k);
          // Every client keeps at least t answering neighbours: drop at most k − t in total.
          const drops = new Map<number, SecAggStage>();
          for (const [i, s] of rawDrops) if (drops.size < k - t) drops.set(i % n, s);
          const d = 1 + r0.int(0, 40);
          const inputs = randomInputs(r0, n, d);
          const cfg = config(mode, n, t, k, d, seed);
          const held = await runSecAggSession({
            config: cfg,
            inputs,
            rng: new SeededRng(seed ^ 0x55),
            dropouts: drops,
          });
          const asked: number[] = [];
          const streamed = await runStreamingSecAggSession({
            config: cfg,
            input: async (i) => {
              asked.push(i);
              return inputs[i];
            },
            rng: new SeededRng(seed ^ 0x55),
            dropouts: drops,
            batchClients: batch,
          });
          expect(streamed.aborted?.code).toBe(held.aborted?.code);
          expect(streamed.survivors).toEqual(held.survivors);
          expect(streamed.droppedByStage).toEqual(held.droppedByStage);
          expect(streamed.pairMasksRecovered).toBe(held.pairMasksRecovered);
          expect(streamed.selfMasksRemoved).toBe(held.selfMasksRemoved);
          // Inputs are asked once each, in order, only of clients still there at round 2.
          expect(asked).toEqual([...asked].sort((a, b) => a - b));
          expect(new Set(asked).size).toBe(asked.length);
          for (const i of asked) {
            const s = drops.get(i);
            expect(s === undefined || SECAGG_STAGES.indexOf(s) > 2).toBe(true);
          }
          if (held.aborted === undefined) {
            expect(streamed.sum).toEqual(held.sum);
            expect(streamed.sum).toEqual(plainSum(inputs, streamed.survivors, d));
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 60_000);

  it('aborts like the holding session when too many clients vanish, at every stage', async () => {
    for (const stage of SECAGG_STAGES) {
      const n = 8;
      const rng = new SeededRng(7);
      const inputs = randomInputs(rng, n, 5);
      const cfg = config('full', n, 5, n - 1, 5, 3);
      // 4 of 8 vanish: fewer than t = 5 remain for that stage.
      const drops = new Map<number, SecAggStage>([0, 2, 4, 6].map((i) => [i, stage]));
      const held = await runSecAggSession({
        config: cfg,
        inputs,
        rng: new SeededRng(1),
        dropouts: drops,
      });
      const streamed = await runStreamingSecAggSession({
        config: cfg,
        input: (i) => inputs[i],
        rng: new SeededRng(1),
        dropouts: drops,
      });
      expect(held.aborted, stage).toBeDefined();
      expect(streamed.aborted?.code, stage).toBe(held.aborted?.code);
      expect(streamed.sum, stage).toBeUndefined();
      expect(streamed.survivors, stage).toEqual([]);
    }
  });

  it('a client without an input vanishes at the masked-input stage (same sum as dropping it there)', async () => {
    const n = 10;
    const rng = new SeededRng(11);
    const inputs = randomInputs(rng, n, 17);
    const cfg = config('plus', n, 4, 6, 17, 5);
    const held = await runSecAggSession({
      config: cfg,
      inputs,
      rng: new SeededRng(2),
      dropouts: new Map([[3, 'masked-input']]),
    });
    const streamed = await runStreamingSecAggSession({
      config: cfg,
      input: (i) => (i === 3 ? undefined : inputs[i]),
      rng: new SeededRng(2),
    });
    expect(held.aborted).toBeUndefined();
    expect(streamed.survivors).toEqual(held.survivors);
    expect(streamed.survivors).not.toContain(3);
    expect(streamed.droppedByStage['masked-input']).toBe(1);
    expect(streamed.sum).toEqual(held.sum);
  });

  it('holds a bounded number of vectors whatever the number of clients', async () => {
    const d = 64;
    const batch = 4;
    const figures = [];
    for (const n of [12, 60]) {
      const cfg = secAggSessionConfig({
        n,
        paramLength: d - 1,
        mode: 'plus',
        neighbours: 6,
        threshold: 4,
        sessionId: new Uint8Array(16),
      });
      const rng = new SeededRng(n);
      let produced = 0;
      const r = await runStreamingSecAggSession({
        config: cfg,
        input: async () => {
          produced++;
          return Uint32Array.from({ length: d }, () => rng.nextU32());
        },
        rng: new SeededRng(1),
        dropouts: new Map([[1, 'consistency']]),
        batchClients: batch,
      });
      expect(r.aborted).toBeUndefined();
      expect(produced).toBe(n);
      figures.push({ live: r.peakLiveInputs, server: r.serverVectorWordsMax });
    }
    // Independent of n: at most two batches of inputs, and only the server's running sum.
    for (const f of figures) {
      expect(f.live).toBeLessThanOrEqual(2 * batch);
      expect(f.server).toBe(d);
    }
    expect(figures[0]).toEqual(figures[1]);
  });

  it('a server without the streaming option keeps one vector per client (what streaming avoids)', async () => {
    const n = 6;
    const d = 8;
    const cfg = config('full', n, 3, n - 1, d, 1);
    const rng = new SeededRng(3);
    const inputs = randomInputs(rng, n, d);
    for (const stream of [false, true]) {
      const { server } = toRound3(cfg, inputs, rng, stream);
      expect(server.retainedVectorWords).toBe(stream ? d : n * d);
    }
  });

  it('a client keeping only the digest of U3 still refuses a survivor set changed after round 3', () => {
    const n = 6;
    const d = 8;
    const cfg = config('full', n, 4, n - 1, d, 4);
    const rng = new SeededRng(9);
    const { clients, server } = toRound3(cfg, randomInputs(rng, n, d), rng, true);
    const reqs = server.closeMaskedInput();
    const sigs = clients.map((c) => c.consistency(reqs.get(c.id) as never));
    const signatures = sigs.map((m) => ({ from: m.from, signature: m.signature }));
    const all = (reqs.get(1) as { survivors: Uint32Array }).survivors;
    const unmaskOf = (c: SecAggClient, survivors: Uint32Array) =>
      c.unmask({
        kind: 'unmask-request',
        session: cfg.sessionId,
        to: c.id,
        survivors,
        dropped: new Uint32Array(0),
        signatures,
      });
    // Changed set: refused.
    expect(() =>
      unmaskOf(
        clients[0] as SecAggClient,
        all.filter((v) => v !== 6),
      ),
    ).toThrowError(expect.objectContaining({ code: 'SECAGG_CONSISTENCY' }));
    // The same set in another buffer at an offset (as decoded from the wire): accepted.
    const padded = new Uint32Array(all.length + 3);
    padded.set(all, 3);
    const msg = unmaskOf(clients[1] as SecAggClient, padded.subarray(3));
    // Every surviving neighbour's self-mask share, and its own.
    expect(msg.selfShares.length).toBe(n);
    expect(msg.keyShares.length).toBe(0);
  });
});

/** Runs clients and a server (optionally streaming) through rounds 0–2. */
function toRound3(
  cfg: SecAggSessionConfig,
  inputs: readonly Uint32Array[],
  rng: SeededRng,
  stream: boolean,
): { clients: SecAggClient[]; server: SecAggServer } {
  const server = new SecAggServer({ config: cfg, rng, streamMaskedInputs: stream });
  const clients = inputs.map(
    (_, i) => new SecAggClient({ id: i + 1, config: cfg, rng, survivorDigestOnly: stream }),
  );
  for (const c of clients) server.receive(c.advertise());
  const shareReqs = server.closeAdvertise();
  for (const c of clients) server.receive(c.share(shareReqs.get(c.id) as never));
  const maskReqs = server.closeShare();
  clients.forEach((c, i) => {
    server.receive(c.maskInput(maskReqs.get(c.id) as never, inputs[i] as Uint32Array));
  });
  return { clients, server };
}
