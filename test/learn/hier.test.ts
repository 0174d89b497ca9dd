import { describe, expect, it } from 'vitest';
import {
  EmbeddedFabric,
  generateTopology,
  type NodeContext,
  type NodeService,
  SeededRng,
  VirtualClock,
} from '../../src/core/index.ts';
import {
  decodeFitRequest,
  defaultConfig,
  encodeFitReply,
  fitSubject,
  GlobalCoordinator,
  type HierSettings,
  LevelAggregator,
  logisticRegression,
  PDM_FEATURES,
  runHierarchical,
  testSet,
} from '../../src/learn/index.ts';
import { drive } from './hier-harness.ts';

type Mode = 'ok' | 'silent' | 'nan' | 'wrong-length' | 'replay' | 'impostor';

/** A tile that answers with a fixed model and weight, or misbehaves as told. */
class FakeTile implements NodeService {
  readonly name = 'learn';
  constructor(
    private readonly value: number,
    private readonly weight: number,
    private readonly mode: Mode,
  ) {}
  start(ctx: NodeContext): void {
    ctx.transport.subscribe(fitSubject(ctx.name), (m) => {
      const req = decodeFitRequest(m.data);
      if (this.mode === 'silent') return;
      const len = this.mode === 'wrong-length' ? req.params.length + 1 : req.params.length;
      const params = new Float32Array(len).fill(this.mode === 'nan' ? Number.NaN : this.value);
      const nonce = this.mode === 'replay' ? 'stale-nonce' : req.header.nonce;
      const clientId = this.mode === 'impostor' ? 'someone-else' : ctx.name;
      m.respond(
        encodeFitReply(
          {
            clientId,
            round: req.header.round,
            nonce,
            weight: this.weight,
            numExamples: this.weight,
            tiles: 1,
            loss: 0.5,
            late: 0,
            rejected: 0,
          },
          params,
        ),
      );
    });
  }
  stop(): void {}
}

const spec = logisticRegression(PDM_FEATURES.length);
const settings: HierSettings = {
  model: spec,
  optimizer: { kind: 'sgd', lr: 0.1 },
  batchSize: 8,
  windowsPerTile: 16,
  seed: 1,
  kappa: { tile: 1, pod: 1, hub: 1, region: 1 },
  tileDeadlineMs: 150,
  secagg: 'off',
  dropoutRate: 0,
};

async function runWith(tiles: [number, number, Mode][]): Promise<{
  params: Float32Array;
  coord: GlobalCoordinator;
  rec: Awaited<ReturnType<GlobalCoordinator['runRound']>>;
}> {
  // 1 region, 2 hubs, 1 pod each, 2 tiles per pod: the four tiles below in topology order.
  const topology = generateTopology({ regions: 1, hubs: 2, pods: 1, tiles: 2 });
  // Virtual time: a silent tile misses its 150 ms deadline however loaded the machine is.
  const clock = new VirtualClock();
  const fabric = new EmbeddedFabric({
    topology,
    clock,
    rng: new SeededRng(1),
    heartbeatIntervalMs: 60_000,
  });
  const coord = new GlobalCoordinator({
    ...settings,
    strategy: 'fedavg',
    expectedTiles: 4,
    test: testSet(1, 50),
  });
  let t = 0;
  for (const node of fabric.nodes.values()) {
    if (node.level === 'global') node.attach(coord);
    else if (node.level === 'tile') {
      const [v, w, mode] = tiles[t++] as [number, number, Mode];
      node.attach(new FakeTile(v, w, mode));
    } else node.attach(new LevelAggregator(settings));
  }
  await fabric.start();
  try {
    const rec = await drive(clock, coord.runRound());
    return { params: coord.params, coord, rec };
  } finally {
    await fabric.stop();
  }
}

describe('hierarchical aggregation over the transport', () => {
  it('the global model is the example-weighted mean over all tiles (HierFAVG)', async () => {
    const { params, rec } = await runWith([
      [1, 10, 'ok'],
      [2, 30, 'ok'],
      [3, 20, 'ok'],
      [4, 40, 'ok'],
    ]);
    const expected = (1 * 10 + 2 * 30 + 3 * 20 + 4 * 40) / 100;
    for (const v of params) expect(v).toBeCloseTo(expected, 5);
    expect(rec?.participants).toBe(4);
  });

  it('late, poisoned, replayed and impersonating tiles are left out, counted, and the round completes', async () => {
    const { params, rec } = await runWith([
      [1, 10, 'ok'],
      [2, 30, 'silent'],
      [3, 20, 'nan'],
      [4, 40, 'ok'],
    ]);
    const expected = (1 * 10 + 4 * 40) / 50;
    for (const v of params) expect(v).toBeCloseTo(expected, 5);
    expect(rec?.dropped).toBe(1);
    expect(rec?.rejected).toBe(1);
    const more = await runWith([
      [1, 10, 'replay'],
      [2, 30, 'wrong-length'],
      [3, 20, 'impostor'],
      [5, 40, 'ok'],
    ]);
    for (const v of more.params) expect(v).toBeCloseTo(5, 5);
    expect(more.rec?.rejected).toBe(3);
  });

  it('a round where no tile answers keeps the model and reports the failure', async () => {
    const { rec } = await runWith([
      [1, 10, 'silent'],
      [2, 30, 'silent'],
      [3, 20, 'silent'],
      [4, 40, 'silent'],
    ]);
    expect(rec?.failure).toBeDefined();
    expect(rec?.participants).toBe(0);
  });

  it('a real hierarchical run with κ at every level learns, with DP stops at its budget', async () => {
    const cfg = { ...defaultConfig(16, 3), windowsPerClient: 48, testWindows: 400, localSteps: 10 };
    const r = await runHierarchical(cfg, {
      levels: ['pod', 'hub', 'region'],
      kappa: { pod: 2, hub: 2 },
    });
    expect(r.rounds).toHaveLength(3);
    expect(r.finalAccuracy).toBeGreaterThan(r.baselineAccuracy + 0.1);
    expect(r.rounds.every((x) => x.participants === 16)).toBe(true);
    const dp = await runHierarchical(
      {
        ...cfg,
        rounds: 10,
        dp: {
          noiseMultiplier: 2,
          delta: 1e-5,
          clipNorm: 1,
          adaptiveClipping: false,
          placement: 'central',
          budget: 4,
        },
      },
      { levels: ['pod'] },
    );
    expect(dp.stopped).toBe('budget-exhausted');
    expect(dp.epsilon).toBeLessThanOrEqual(4);
    expect(dp.rounds.length).toBeGreaterThan(0);
  }, 60_000);
});
