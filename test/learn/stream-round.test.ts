/**
 * The simulator's streamed secure step (`Aggregation.finishStreaming`): the same aggregate as
 * the holding path (`add` + `finish`, which runs `secureAggregate` over every update) and as the
 * plain weighted mean, up to SecAgg's quantization; guard rejections, dropouts at every stage
 * within the threshold and aborts beyond it; and a number of live updates that does not depend
 * on the number of clients.
 */
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  Aggregation,
  createStrategy,
  DpFedAvg,
  type ReceivedUpdate,
  SECAGG_STAGES,
  type SecAggStage,
} from '../../src/learn/index.ts';
import { WorkerClientHost } from '../../src/learn/sim/secagg-hosts.ts';

const D = 24;

function updates(n: number, seed: number): ReceivedUpdate[] {
  const rng = new SeededRng(seed);
  return Array.from({ length: n }, (_, i) => ({
    clientId: `c${i}`,
    params: Float32Array.from({ length: D }, () => rng.nextFloat() - 0.5),
    numExamples: 1 + rng.int(1, 40),
    round: 1,
    nonce: `n${i}`,
  }));
}

function aggregation(secagg: 'off' | 'full' | 'plus', dp?: DpFedAvg): Aggregation {
  return new Aggregation({
    strategy: createStrategy('fedavg'),
    secagg,
    dp,
    expectedClients: 10,
    dropoutRate: 0,
    paramCount: D,
    rng: new SeededRng(2),
  });
}

const copy = (u: ReceivedUpdate): ReceivedUpdate => ({ ...u, params: Float32Array.from(u.params) });

/** Largest weighted-mean error of SecAgg quantization: one level (16 / 2^22) per coordinate. */
const QUANTUM = 16 / (2 ** 22 - 1);

describe('streamed secure aggregation step', () => {
  it('gives the aggregate of the holding path and of the plain mean, full and plus', async () => {
    const ups = updates(10, 7);
    const plain = aggregation('off');
    plain.begin(1, new Float32Array(D));
    for (const u of ups) plain.add(copy(u));
    const ref = (await plain.finish(1)).params;
    for (const mode of ['full', 'plus'] as const) {
      const holding = aggregation(mode);
      holding.begin(1, new Float32Array(D));
      for (const u of ups) holding.add(copy(u));
      const held = await holding.finish(1);
      const streaming = aggregation(mode);
      streaming.begin(1, new Float32Array(D));
      const out = await streaming.finishStreaming(1, {
        count: ups.length,
        maxWeight: 41,
        produce: async (i) => copy(ups[i] as ReceivedUpdate),
        batchClients: 3,
      });
      expect(out.failure).toBeUndefined();
      expect(out.participants).toBe(10);
      expect(out.used).toBe(held.used);
      expect(out.examples).toBe(held.examples);
      expect(streaming.weightOfLastStep).toBeCloseTo(holding.weightOfLastStep, 3);
      for (let i = 0; i < D; i++) {
        // Both are the plain mean up to stochastic rounding (≤ 1 level per client, averaged).
        expect(Math.abs((out.params[i] as number) - (ref[i] as number))).toBeLessThan(2 * QUANTUM);
        expect(Math.abs((out.params[i] as number) - (held.params[i] as number))).toBeLessThan(
          4 * QUANTUM,
        );
      }
    }
  });

  it('with DP: clipped deltas at uniform weight, the same mean as the holding path', async () => {
    const ups = updates(8, 3).map((u) => ({
      ...u,
      params: u.params.map((v) => v * 10),
    }));
    const results: Float32Array[] = [];
    for (const streamed of [false, true]) {
      const dp = new DpFedAvg({ noiseMultiplier: 0, clipNorm: 1, placement: 'distributed' });
      const agg = aggregation('plus', dp);
      agg.begin(1, new Float32Array(D));
      let out: Awaited<ReturnType<Aggregation['finish']>>;
      if (streamed)
        out = await agg.finishStreaming(1, {
          count: ups.length,
          maxWeight: 1000,
          produce: async (i) => copy(ups[i] as ReceivedUpdate),
        });
      else {
        for (const u of ups) agg.add(copy(u));
        out = await agg.finish(1);
      }
      expect(out.failure).toBeUndefined();
      expect(out.unclippedFraction).toBe(0);
      results.push(out.params);
    }
    for (let i = 0; i < D; i++)
      expect(
        Math.abs(((results[0] as Float32Array)[i] as number) - (results[1] as Float32Array)[i]!),
      ).toBeLessThan(4 * QUANTUM);
    // Clipped to norm 1 and averaged over m = 10: the step is at most 8/10 long.
    let norm = 0;
    for (const v of results[1] as Float32Array) norm += v * v;
    expect(Math.sqrt(norm)).toBeLessThanOrEqual(0.8 + 1e-3);
  });

  it('with distributed DP noise drawn on the client hosts: the same seeded step on worker hosts, on this thread and again', async () => {
    const ups = updates(12, 9);
    const host = new WorkerClientHost(2);
    try {
      const step = async (onWorkers: boolean, noiseMultiplier: number): Promise<Float32Array> => {
        const dp = new DpFedAvg({ noiseMultiplier, clipNorm: 1, placement: 'distributed' });
        const agg = aggregation('plus', dp);
        agg.begin(1, new Float32Array(D));
        const out = await agg.finishStreaming(1, {
          count: ups.length,
          maxWeight: 1000,
          produce: async (i) => copy(ups[i] as ReceivedUpdate),
          batchClients: 5,
          ...(onWorkers ? { host } : {}),
        });
        expect(out.failure).toBeUndefined();
        expect(out.participants).toBe(ups.length);
        return out.params;
      };
      const workers = await step(true, 1);
      expect(await step(true, 1)).toEqual(workers);
      expect(await step(false, 1)).toEqual(workers);
      // The noise is there: without it the step differs by far more than quantization.
      const quiet = await step(true, 0);
      let diff = 0;
      for (let i = 0; i < D; i++)
        diff = Math.max(diff, Math.abs((quiet[i] as number) - (workers[i] as number)));
      expect(diff).toBeGreaterThan(100 * QUANTUM);
    } finally {
      await host.close();
    }
  }, 60_000);

  it('rejected updates and clients vanishing at every stage within the threshold are left out; too many abort', async () => {
    const ups = updates(20, 5);
    // Client 0 sends NaN (the guard rejects it); one client vanishes at each stage.
    (ups[0] as ReceivedUpdate).params[3] = Number.NaN;
    const vanishAt = new Map<number, SecAggStage>(SECAGG_STAGES.map((s, i) => [i + 1, s]));
    const agg = aggregation('full');
    agg.begin(1, new Float32Array(D));
    const produced: number[] = [];
    const out = await agg.finishStreaming(1, {
      count: ups.length,
      maxWeight: 41,
      vanishAt,
      produce: async (i) => {
        produced.push(i);
        return copy(ups[i] as ReceivedUpdate);
      },
    });
    expect(out.failure).toBeUndefined();
    // Vanished before masking: 1, 2, 3 (never trained); rejected: 0. In the sum: 4..19.
    expect(produced).toEqual([0, ...Array.from({ length: 16 }, (_, i) => i + 4)]);
    expect(out.rejected).toBe(1);
    expect(out.participants).toBe(16);
    expect(out.dropped).toBe(3);
    let w = 0;
    const mean = new Float64Array(D);
    for (const u of ups.slice(4)) {
      w += u.numExamples;
      for (let i = 0; i < D; i++) mean[i] = (mean[i] as number) + u.numExamples * u.params[i]!;
    }
    for (let i = 0; i < D; i++)
      expect(Math.abs((out.params[i] as number) - (mean[i] as number) / w)).toBeLessThan(
        2 * QUANTUM,
      );
    // Beyond the threshold: a clean failure, the model unchanged.
    const global = new Float32Array(D).fill(0.25);
    const many = new Map<number, SecAggStage>(
      Array.from({ length: 15 }, (_, i) => [i, 'unmask' as SecAggStage]),
    );
    agg.begin(2, global);
    const failed = await agg.finishStreaming(2, {
      count: ups.length,
      maxWeight: 41,
      vanishAt: many,
      produce: async (i) => ({ ...copy(ups[i] as ReceivedUpdate), round: 2, nonce: `m${i}` }),
    });
    expect(failed.failure).toMatch(/secure aggregation aborted/);
    expect(failed.params).toBe(global);
    expect(failed.participants).toBe(0);
  });

  it('keeps a bounded number of updates alive, independent of the number of clients', async () => {
    const batch = 4;
    const seen: { inFlight: number; live: number; server: number }[] = [];
    for (const n of [10, 50]) {
      const ups = updates(n, n);
      const agg = aggregation('plus');
      agg.begin(1, new Float32Array(D));
      let inFlight = 0;
      let maxInFlight = 0;
      const out = await agg.finishStreaming(1, {
        count: n,
        maxWeight: 41,
        batchClients: batch,
        produce: async (i) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setImmediate(r));
          inFlight--;
          return copy(ups[i] as ReceivedUpdate);
        },
      });
      expect(out.failure).toBeUndefined();
      const s = agg.lastStream;
      expect(s).toBeDefined();
      seen.push({
        inFlight: maxInFlight,
        live: s?.peakLiveInputs ?? -1,
        server: s?.serverVectorWordsMax ?? -1,
      });
    }
    for (const f of seen) {
      expect(f.inFlight).toBeLessThanOrEqual(2 * batch);
      expect(f.live).toBeLessThanOrEqual(2 * batch);
      // The server holds its running sum only: the model plus the weight coordinate.
      expect(f.server).toBe(D + 1);
    }
  });
});
