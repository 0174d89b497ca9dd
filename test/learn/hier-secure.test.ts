/**
 * Hierarchical runs with secure aggregation between each pod and its tiles, over the in-process
 * transport in virtual time: the result equals the plaintext weighted mean up to quantization,
 * tiles vanishing at any protocol stage are recovered, too many vanishing tiles abort only that
 * pod's pass, and a pod never sees an individual update in the clear.
 */
import { decode } from '@ipld/dag-cbor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  choosePodSecAggParams,
  SECURE_PROTOCOL_ROUNDS,
  SECURE_ROUND_MS_DEFAULT,
} from '../../src/learn/hier/secure.ts';
import { levelDeadlineMs } from '../../src/learn/hier/services.ts';
import { SECAGG_STAGES, type SecAggStage } from '../../src/learn/index.ts';
import { trainLocal } from '../../src/learn/model/train.ts';
import {
  baseSettings,
  D,
  kindOf,
  startRig,
  type TileScript,
  weightedMean,
} from './hier-harness.ts';

/** One quantization step of a value in [−8, 8] at 2^22 levels. */
const STEP = 16 / (2 ** 22 - 1);

function maxAbsDiff(a: Float32Array, b: Float32Array, offset: number): number {
  let m = 0;
  for (let i = 0; i < a.length; i++)
    m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number) - offset));
  return m;
}

describe('secure hierarchical aggregation: same result as plaintext', () => {
  it('equals the example-weighted mean of all tiles, up to quantization (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            delta: fc.double({ min: -1, max: 1, noNaN: true }),
            weight: fc.integer({ min: 1, max: 64 }),
          }),
          { minLength: 8, maxLength: 8 },
        ),
        fc.constantFrom('full' as const, 'plus' as const),
        async (scripts, mode) => {
          const rig = await startRig({
            pods: 2,
            tilesPerPod: 4,
            settings: { secagg: mode },
            script: (i) => scripts[i] as TileScript,
          });
          try {
            const before = Float32Array.from(rig.coordinator.params);
            const rec = await rig.round();
            expect(rec?.failure).toBeUndefined();
            expect(rec?.participants).toBe(8);
            const expected = weightedMean(scripts);
            // Each tile's w·Δ is off by at most one step; the mean divides by Σw/maxWeight.
            const sumRatio =
              scripts.reduce((a, s) => a + s.weight, 0) / baseSettings.windowsPerTile;
            const bound = (2 * 4 * STEP) / sumRatio + 1e-5;
            expect(maxAbsDiff(rig.coordinator.params, before, expected)).toBeLessThan(bound);
            expect(rig.coordinator.secure.sessions).toBe(2);
          } finally {
            await rig.stop();
          }
        },
      ),
      { numRuns: 6 },
    );
  }, 60_000);

  it('real local training with κ_pod = 2: secure and plaintext global models agree', async () => {
    const fixedSeedTrain = {
      train: async (t: Parameters<typeof trainLocal>[0]) => trainLocal({ ...t, seed: 7 }),
      kappa: { tile: 5, pod: 2, hub: 1, region: 1 },
    };
    const results: Float32Array[] = [];
    for (const secagg of ['off', 'full'] as const) {
      const rig = await startRig({
        pods: 2,
        tilesPerPod: 5,
        settings: { ...fixedSeedTrain, secagg, windowsPerTile: 32 },
        script: null,
      });
      try {
        const rec = await rig.round();
        expect(rec?.failure).toBeUndefined();
        expect(rec?.participants).toBe(10);
        results.push(Float32Array.from(rig.coordinator.params));
      } finally {
        await rig.stop();
      }
    }
    const [plain, secure] = results as [Float32Array, Float32Array];
    expect(maxAbsDiff(plain, secure, 0)).toBeLessThan(1e-3);
    // And the round did move the model (the comparison is not between two untouched models).
    const rig = await startRig({ pods: 1, tilesPerPod: 3 });
    const init = Float32Array.from(rig.coordinator.params);
    await rig.stop();
    expect(maxAbsDiff(plain, init, 0)).toBeGreaterThan(1e-2);
  }, 60_000);
});

describe('secure hierarchical aggregation: tiles vanishing mid-protocol', () => {
  // A pod of 8 tiles runs full SecAgg with t = 5: up to 2 tiles may vanish.
  const scripts = Array.from({ length: 8 }, (_, i) => ({ delta: 0.05 * (i + 1), weight: i + 1 }));
  const replyKind: Record<SecAggStage, string> = {
    advertise: 'advertise',
    share: 'share',
    'masked-input': 'masked-input',
    consistency: 'consistency',
    unmask: 'unmask',
  };

  it.each(SECAGG_STAGES.map((s) => [s]))(
    'a tile vanishing at %s is recovered by the protocol',
    async (stage) => {
      const rig = await startRig({
        pods: 1,
        tilesPerPod: 8,
        script: (i) => scripts[i] as TileScript,
        fault: (i) =>
          i === 2 ? (kind, reply) => (kind === replyKind[stage] ? undefined : reply) : undefined,
      });
      try {
        const before = Float32Array.from(rig.coordinator.params);
        const rec = await rig.round();
        expect(rec?.failure).toBeUndefined();
        // Before its masked input the tile is left out; after it, its input is in the sum.
        const inSum = stage === 'consistency' || stage === 'unmask';
        const used = inSum ? scripts : scripts.filter((_, i) => i !== 2);
        expect(rec?.participants).toBe(used.length);
        expect(rec?.dropped).toBe(inSum ? 0 : 1);
        const expected = weightedMean(used);
        expect(maxAbsDiff(rig.coordinator.params, before, expected)).toBeLessThan(1e-4);
        expect(rig.coordinator.secure).toEqual({
          sessions: 1,
          aborted: 0,
          recovered: stage === 'advertise' ? 0 : 1,
        });
      } finally {
        await rig.stop();
      }
    },
    30_000,
  );

  it.each(SECAGG_STAGES.map((s) => [s]))(
    'four tiles vanishing at %s abort that pod pass cleanly; the other pod and the next round go on',
    async (stage) => {
      let faulty = true;
      const rig = await startRig({
        pods: 2,
        tilesPerPod: 8,
        script: (i) => scripts[i % 8] as TileScript,
        fault: (i) =>
          i < 4
            ? (kind, reply) => (faulty && kind === replyKind[stage] ? undefined : reply)
            : undefined,
      });
      try {
        const before = Float32Array.from(rig.coordinator.params);
        const rec = await rig.round();
        expect(rec?.failure).toBeUndefined();
        expect(rec?.participants).toBe(8);
        // Only the second pod's tiles are in the model.
        expect(maxAbsDiff(rig.coordinator.params, before, weightedMean(scripts))).toBeLessThan(
          1e-4,
        );
        expect(rig.coordinator.secure.aborted).toBe(1);
        const [p1, p2] = [...rig.pods.values()];
        expect(p1?.secureAborted).toBe(1);
        expect(p1?.failedPasses).toBe(1);
        expect(p2?.secureAborted).toBe(0);
        faulty = false;
        const next = await rig.round();
        expect(next?.failure).toBeUndefined();
        expect(next?.participants).toBe(16);
        expect(rig.coordinator.secure).toMatchObject({ sessions: 4, aborted: 1 });
      } finally {
        await rig.stop();
      }
    },
    30_000,
  );
});

describe('secure hierarchical aggregation: SecAgg+ in a large pod', () => {
  it('a pod of 24 tiles uses k-regular neighbourhoods and recovers a vanished tile', async () => {
    const n = 24;
    const scripts = Array.from({ length: n }, (_, i) => ({
      delta: 0.01 * ((i % 7) - 3),
      weight: 1 + (i % 5),
    }));
    const rosters: number[] = [];
    const rig = await startRig({
      pods: 1,
      tilesPerPod: n,
      settings: { secagg: 'plus' },
      script: (i) => scripts[i] as TileScript,
      fault: (i) => (kind, reply, request) => {
        if (kind === 'share') {
          const req = decode(request.data) as { neighbours: unknown[] };
          rosters.push(req.neighbours.length);
        }
        return i === 5 && kind === 'masked-input' ? undefined : reply;
      },
    });
    try {
      const before = Float32Array.from(rig.coordinator.params);
      const rec = await rig.round();
      expect(rec?.failure).toBeUndefined();
      expect(rec?.participants).toBe(n - 1);
      const p = choosePodSecAggParams(n, 'plus', 0);
      expect(p.mode).toBe('plus');
      expect(rosters).toHaveLength(n);
      expect(rosters.every((k) => k === p.k)).toBe(true);
      const expected = weightedMean(scripts.filter((_, i) => i !== 5));
      expect(maxAbsDiff(rig.coordinator.params, before, expected)).toBeLessThan(1e-4);
      expect(rig.coordinator.secure).toEqual({ sessions: 1, aborted: 0, recovered: 1 });
    } finally {
      await rig.stop();
    }
  }, 60_000);
});

describe('secure hierarchical aggregation: what the pod sees', () => {
  it('a pod receives public keys, ciphertexts and masked vectors, never an update', async () => {
    const seen = new Map<string, Uint8Array[]>();
    const scripts = Array.from({ length: 6 }, (_, i) => ({ delta: 0.01 * (i + 1), weight: 10 }));
    const rig = await startRig({
      pods: 1,
      tilesPerPod: 6,
      script: (i) => scripts[i] as TileScript,
      podHooks: () => ({
        onReply: (_subject, reply) => {
          const k = kindOf(reply) ?? 'not secagg';
          seen.set(k, [...(seen.get(k) ?? []), reply]);
        },
      }),
    });
    // Everything on the bus, to look for any tile's trained parameters in the clear.
    const bus: Uint8Array[] = [];
    rig.fabric.transport.subscribe('>', (m) => {
      bus.push(m.data);
    });
    try {
      const before = Float32Array.from(rig.coordinator.params);
      const rec = await rig.round();
      expect(rec?.participants).toBe(6);
      expect([...seen.keys()].sort()).toEqual(
        ['advertise', 'consistency', 'masked-input', 'share', 'unmask'].sort(),
      );
      expect(seen.get('masked-input')).toHaveLength(6);
      // A masked vector looks uniform: its words are spread over [0, 2^32), unlike the quantized
      // update (≈ L/2 + tiny offsets, all below 2^22).
      for (const bytes of seen.get('masked-input') ?? []) {
        const { decodeSecAggMessage } = await import('../../src/learn/index.ts');
        const msg = decodeSecAggMessage(bytes, {
          sessionId: new Uint8Array(16),
          mode: 'full',
          n: 6,
          t: 4,
          k: 5,
          vectorLength: D + 2,
        }) as { y: Uint32Array };
        const high = [...msg.y].filter((w) => w >= 2 ** 22).length;
        expect(high / msg.y.length).toBeGreaterThan(0.8);
      }
      // No tile's trained model (as float32 bytes) crossed the bus.
      for (const s of scripts) {
        const trained = new Float32Array(before.length);
        for (let i = 0; i < trained.length; i++) trained[i] = (before[i] as number) + s.delta;
        const needle = Buffer.from(trained.buffer).subarray(0, 16);
        expect(bus.some((m) => Buffer.from(m).includes(needle))).toBe(false);
      }
    } finally {
      await rig.stop();
    }
  }, 30_000);

  it('control: without SecAgg the same eavesdropper does find the tiles’ models', async () => {
    const rig = await startRig({
      pods: 1,
      tilesPerPod: 3,
      settings: { secagg: 'off' },
      script: () => ({ delta: 0.5, weight: 1 }),
    });
    const bus: Uint8Array[] = [];
    rig.fabric.transport.subscribe('>', (m) => {
      bus.push(m.data);
    });
    try {
      const before = Float32Array.from(rig.coordinator.params);
      await rig.round();
      const trained = before.map((v) => v + 0.5);
      const needle = Buffer.from(trained.buffer).subarray(0, 16);
      expect(bus.filter((m) => Buffer.from(m).includes(needle)).length).toBeGreaterThanOrEqual(3);
    } finally {
      await rig.stop();
    }
  }, 30_000);
});

describe('secure hierarchical aggregation: parameters and deadlines', () => {
  it('chooses full SecAgg for small pods and SecAgg+ neighbourhoods for large ones', () => {
    expect(choosePodSecAggParams(4, 'plus', 0)).toEqual({
      mode: 'full',
      k: 3,
      t: 2,
      relaxed: true,
    });
    expect(choosePodSecAggParams(8, 'plus', 0)).toMatchObject({ mode: 'full', k: 7, t: 5 });
    const big = choosePodSecAggParams(64, 'plus', 0);
    expect(big.mode).toBe('plus');
    expect(big.k).toBeLessThan(63);
    expect(2 * big.t).toBeGreaterThan(big.k);
    expect(choosePodSecAggParams(64, 'full', 0)).toMatchObject({ mode: 'full', k: 63 });
  });

  it('each pod pass has the four protocol rounds on top of training', () => {
    const k = { tile: 1, pod: 2, hub: 1, region: 1 };
    const plain = levelDeadlineMs('pod', { kappa: k, tileDeadlineMs: 1000, secagg: 'off' });
    const secure = levelDeadlineMs('pod', { kappa: k, tileDeadlineMs: 1000, secagg: 'plus' });
    expect(secure - plain).toBe(2 * SECURE_PROTOCOL_ROUNDS * SECURE_ROUND_MS_DEFAULT);
  });
});
