/**
 * Hierarchical secure aggregation over a real nats-server: the pod and each tile have their own
 * NATS connection, so every SecAgg round (keys, encrypted shares relayed by the pod, masked
 * vectors, signatures, unmasking shares) crosses the wire. One tile vanishes mid-protocol.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Transport } from '../../src/core/index.ts';
import { NatsTransport } from '../../src/fabric/index.ts';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts';
import { startRig, type TileScript, weightedMean } from './hier-harness.ts';

let server: TestNatsServer;
const connections: NatsTransport[] = [];

async function connect(name: string): Promise<NatsTransport> {
  const t = await NatsTransport.connect({ servers: server.url, name });
  connections.push(t);
  return t;
}

beforeAll(async () => {
  server = await startNatsServer({ jetstream: false });
});

afterAll(async () => {
  for (const c of connections) await c.close();
  await server?.stop();
});

describe('hierarchical SecAgg over NATS', () => {
  it('a pod of 6 tiles aggregates securely over real connections, recovering a vanished tile', async () => {
    const scripts = Array.from({ length: 6 }, (_, i) => ({ delta: 0.03 * (i + 1), weight: 2 + i }));
    const fabricTransport = await connect('fabric');
    const own = new Map<string, Transport>();
    const names = ['eu1.h1.p1', ...scripts.map((_, i) => `eu1.h1.p1.t0${i + 1}`)];
    for (const n of names) own.set(n, await connect(n));
    const rig = await startRig({
      pods: 1,
      tilesPerPod: 6,
      realTime: true,
      transport: fabricTransport,
      transportFor: (node) => own.get(node),
      settings: { secagg: 'full', secureRoundMs: 1_000, tileDeadlineMs: 2_000 },
      script: (i) => scripts[i] as TileScript,
      // Tile 4 shares its keys, then vanishes before sending its masked input.
      fault: (i) =>
        i === 3 ? (kind, reply) => (kind === 'masked-input' ? undefined : reply) : undefined,
    });
    try {
      const before = Float32Array.from(rig.coordinator.params);
      const rec = await rig.round();
      expect(rec?.failure).toBeUndefined();
      expect(rec?.participants).toBe(5);
      const expected = weightedMean(scripts.filter((_, i) => i !== 3));
      for (let i = 0; i < before.length; i++)
        expect((rig.coordinator.params[i] as number) - (before[i] as number)).toBeCloseTo(
          expected,
          4,
        );
      expect(rig.coordinator.secure).toEqual({ sessions: 1, aborted: 0, recovered: 1 });
      // The pod's own connection carried the protocol.
      const podStats = own.get('eu1.h1.p1')?.stats();
      expect(podStats?.published ?? 0).toBeGreaterThanOrEqual(6 + 4 * 5);
    } finally {
      await rig.stop();
    }
  });
});
