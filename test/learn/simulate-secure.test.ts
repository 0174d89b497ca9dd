/**
 * The simulator composed with secure aggregation (the secagg module's `secureAggregate`) and
 * DP: the securely aggregated round equals the plain one up to quantization, dropouts within
 * the threshold are recovered, and distributed noise composes with the masks.
 */
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  Aggregation,
  createStrategy,
  defaultConfig,
  runHierarchical,
  runSimulation,
} from '../../src/learn/index.ts';

describe('simulation with secure aggregation', () => {
  it('a SecAgg(+) step gives the plain weighted mean up to quantization', async () => {
    const rng = new SeededRng(4);
    const ups = Array.from({ length: 12 }, (_, i) => ({
      clientId: `c${i}`,
      params: Float32Array.from({ length: 40 }, () => rng.nextFloat() - 0.5),
      numExamples: 1 + rng.int(1, 50),
      round: 1,
      nonce: `n${i}`,
    }));
    const results: Float32Array[] = [];
    for (const secagg of ['off', 'full', 'plus'] as const) {
      const agg = new Aggregation({
        strategy: createStrategy('fedavg'),
        secagg,
        dp: undefined,
        expectedClients: 12,
        dropoutRate: 0,
        paramCount: 40,
        rng: new SeededRng(1),
      });
      agg.begin(1, new Float32Array(40));
      for (const u of ups) agg.add({ ...u, params: Float32Array.from(u.params) });
      const out = await agg.finish(1);
      expect(out.failure).toBeUndefined();
      results.push(out.params);
    }
    for (const r of results.slice(1))
      for (let i = 0; i < 40; i++)
        expect(
          Math.abs((r[i] as number) - ((results[0] as Float32Array)[i] as number)),
        ).toBeLessThan(1e-4);
  });

  it('clients vanishing at protocol stages are recovered; too many abort the step cleanly', async () => {
    const ups = Array.from({ length: 10 }, (_, i) => ({
      clientId: `c${i}`,
      params: new Float32Array(8).fill(i / 10),
      numExamples: 1,
      round: 1,
      nonce: `n${i}`,
    }));
    const agg = new Aggregation({
      strategy: createStrategy('fedavg'),
      secagg: 'full',
      dp: undefined,
      expectedClients: 10,
      dropoutRate: 0.2,
      paramCount: 8,
      rng: new SeededRng(2),
    });
    agg.begin(1, new Float32Array(8));
    // Client 9 drops after sending its masked input (its self mask is removed); client 8 before.
    for (const u of ups)
      agg.add(
        { ...u, params: Float32Array.from(u.params) },
        u.clientId === 'c8' ? 'masked-input' : u.clientId === 'c9' ? 'consistency' : undefined,
      );
    const ok = await agg.finish(1);
    expect(ok.failure).toBeUndefined();
    expect(ok.dropped).toBe(1);
    // Survivors 0..7 and 9 (9 dropped after its input was in): mean of their values.
    // (Values stay inside SecAgg's clipping range of ±8.)
    const expected = [0, 1, 2, 3, 4, 5, 6, 7, 9].reduce((a, b) => a + b, 0) / 90;
    expect(ok.params[0]).toBeCloseTo(expected, 3);
    agg.begin(2, new Float32Array(8));
    for (const u of ups)
      agg.add(
        { ...u, round: 2, nonce: `m${u.clientId}`, params: Float32Array.from(u.params) },
        Number(u.clientId.slice(1)) < 7 ? 'advertise' : undefined,
      );
    const aborted = await agg.finish(2);
    expect(aborted.failure).toMatch(/secure aggregation aborted/);
    expect(Array.from(aborted.params).every((v) => v === 0)).toBe(true);
  }, 30_000);

  it('flat SecAgg+ with distributed DP noise trains, and stops at the ε budget', async () => {
    const cfg = {
      ...defaultConfig(40, 3),
      clientsPerRound: 20,
      windowsPerClient: 32,
      testWindows: 400,
      localSteps: 10,
    };
    const r = await runSimulation({
      ...cfg,
      secagg: 'plus',
      dropoutRate: 0.1,
      dp: {
        epsilon: 6,
        delta: 1e-5,
        clipNorm: 1,
        adaptiveClipping: false,
        placement: 'distributed',
      },
    });
    expect(r.rounds).toHaveLength(3);
    expect(r.rounds.every((x) => x.failure === undefined)).toBe(true);
    expect(r.epsilon).toBeLessThanOrEqual(6 * (1 + 1e-6));
    expect(r.finalAccuracy).toBeGreaterThan(r.baselineAccuracy);
  }, 60_000);

  it('hierarchical run with SecAgg+ at the pods', async () => {
    const r = await runHierarchical(
      {
        ...defaultConfig(16, 2),
        secagg: 'plus',
        windowsPerClient: 32,
        testWindows: 400,
        localSteps: 10,
      },
      { levels: ['pod'], tileDeadlineMs: 5000 },
    );
    expect(r.rounds.every((x) => x.participants === 16 && x.failure === undefined)).toBe(true);
    expect(r.finalAccuracy).toBeGreaterThan(r.baselineAccuracy + 0.1);
  }, 60_000);
});
