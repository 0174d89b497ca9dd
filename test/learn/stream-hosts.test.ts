/**
 * Simulated SecAgg clients on worker threads: the streaming session over a WorkerClientHost
 * gives the exact sum of the survivors' inputs, with dropouts at every stage, like the clients
 * on the main thread; and aborts the same way beyond the threshold.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  encodeClientInput,
  encodingRng,
  quantizationLevelsFor,
  runStreamingSecAggSession,
  SECAGG_STAGES,
  type SecAggInputEncoding,
  type SecAggSessionConfig,
  type SecAggStage,
} from '../../src/learn/secagg/index.ts';
import { WorkerClientHost } from '../../src/learn/sim/secagg-hosts.ts';
import { plainSum } from './secagg-fixture.ts';

const host = new WorkerClientHost(2);
afterAll(() => host.close());

describe('SecAgg clients on worker threads', () => {
  it('exact sum with a client vanishing at every stage, same survivors as on the main thread', async () => {
    const n = 14;
    const d = 300;
    const cfg: SecAggSessionConfig = {
      sessionId: new SeededRng(5).fill(new Uint8Array(16)),
      mode: 'plus',
      n,
      t: 6,
      k: 10,
      vectorLength: d,
    };
    const rng = new SeededRng(21);
    const inputs = Array.from({ length: n }, () =>
      Uint32Array.from({ length: d }, () => rng.nextU32()),
    );
    const drops = new Map<number, SecAggStage>(SECAGG_STAGES.map((s, i) => [2 * i + 1, s]));
    const input = (i: number) => Uint32Array.from(inputs[i] as Uint32Array);
    const onWorkers = await runStreamingSecAggSession({
      config: cfg,
      input,
      rng: new SeededRng(3),
      dropouts: drops,
      batchClients: 3,
      host,
    });
    const inProcess = await runStreamingSecAggSession({
      config: cfg,
      input,
      rng: new SeededRng(3),
      dropouts: drops,
      batchClients: 3,
    });
    expect(onWorkers.aborted).toBeUndefined();
    // Vanishing at consistency or unmask still leaves the input in the sum.
    expect(onWorkers.survivors).toEqual([0, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(onWorkers.survivors).toEqual(inProcess.survivors);
    expect(onWorkers.droppedByStage).toEqual(inProcess.droppedByStage);
    expect(onWorkers.sum).toEqual(plainSum(inputs, onWorkers.survivors, d));
    expect(onWorkers.sum).toEqual(inProcess.sum);
    expect(onWorkers.pairMasksRecovered).toBeGreaterThan(0);
  }, 60_000);

  it('aborts beyond the threshold and serves the next session', async () => {
    const n = 6;
    const d = 4;
    const cfg: SecAggSessionConfig = {
      sessionId: new Uint8Array(16),
      mode: 'full',
      n,
      t: 4,
      k: n - 1,
      vectorLength: d,
    };
    const inputs = Array.from({ length: n }, (_, i) => new Uint32Array(d).fill(i + 1));
    const aborted = await runStreamingSecAggSession({
      config: cfg,
      input: (i) => Uint32Array.from(inputs[i] as Uint32Array),
      rng: new SeededRng(1),
      dropouts: new Map<number, SecAggStage>([
        [0, 'unmask'],
        [1, 'unmask'],
        [2, 'unmask'],
      ]),
      host,
    });
    expect(aborted.aborted?.code).toBe('SECAGG_TOO_FEW_CLIENTS');
    const ok = await runStreamingSecAggSession({
      config: cfg,
      input: (i) => Uint32Array.from(inputs[i] as Uint32Array),
      rng: new SeededRng(2),
      host,
    });
    expect(ok.sum).toEqual(new Uint32Array(d).fill(21));
  }, 60_000);

  it('noise share and quantization on the hosts: the same sum as encoding on the main thread with the same per-client seeds', async () => {
    const n = 12;
    const d = 200;
    const cfg: SecAggSessionConfig = {
      sessionId: new SeededRng(9).fill(new Uint8Array(16)),
      mode: 'plus',
      n,
      t: 5,
      k: 8,
      vectorLength: d + 1,
    };
    const data = new SeededRng(33);
    const updates = Array.from({ length: n }, () =>
      Float32Array.from({ length: d }, () => 2 * data.nextFloat() - 1),
    );
    const weights = updates.map((_, i) => 1 + (i % 4));
    const encoding: SecAggInputEncoding = {
      maxWeight: 4,
      clipRange: 8,
      levels: quantizationLevelsFor(n),
      noiseStd: 0.05,
    };
    const drops = new Map<number, SecAggStage>([
      [3, 'masked-input'],
      [7, 'consistency'],
    ]);
    const raw = (i: number) => ({
      update: Float32Array.from(updates[i] as Float32Array),
      weight: weights[i] as number,
    });
    const session = (h: WorkerClientHost | undefined) =>
      runStreamingSecAggSession({
        config: cfg,
        input: raw,
        encoding,
        rng: new SeededRng(17),
        dropouts: drops,
        batchClients: 4,
        ...(h === undefined ? {} : { host: h }),
      });
    const onWorkers = await session(host);
    const inProcess = await session(undefined);
    // The reference: the same encoding seeds (the session draws one per client, first thing),
    // each client's input encoded here on the main thread.
    const seedRng = new SeededRng(17);
    const seeds = Array.from({ length: n }, () => seedRng.nextU32());
    const encoded = updates.map((_, i) =>
      encodeClientInput(raw(i), encoding, encodingRng(seeds[i])),
    );
    expect(onWorkers.aborted).toBeUndefined();
    expect(onWorkers.survivors).toEqual(inProcess.survivors);
    expect(onWorkers.survivors).not.toContain(3);
    expect(onWorkers.survivors).toContain(7);
    const expected = plainSum(encoded, onWorkers.survivors, d + 1);
    expect(onWorkers.sum).toEqual(expected);
    expect(inProcess.sum).toEqual(expected);
    // The noise is really there: without it the sum differs.
    const quiet = updates.map((_, i) =>
      encodeClientInput(raw(i), { ...encoding, noiseStd: 0 }, encodingRng(seeds[i])),
    );
    expect(plainSum(quiet, onWorkers.survivors, d + 1)).not.toEqual(expected);
  }, 60_000);
});
