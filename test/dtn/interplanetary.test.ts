import { describe, expect, it } from 'vitest';
import { generateTopology, VirtualClock } from '../../src/core/index.ts';
import { InterplanetaryTier, SERVICE_LEARN_UPDATE } from '../../src/dtn/index.ts';
import { CrdtReplica } from '../../src/store/index.ts';

const T0 = 1_800_000_000_000;
const MIN = 60_000;

describe('interplanetary tier (Earth region eu1 and Mars over DTN contacts)', () => {
  const topology = generateTopology({
    regions: 1,
    hubs: 1,
    pods: 1,
    tiles: 1,
    interplanetary: true,
  });

  it('carries federated-learning updates as bundles with Mars light time', async () => {
    const clock = new VirtualClock(T0);
    const tier = new InterplanetaryTier({ topology, clock });
    tier.start();
    const got: { at: number; bytes: number[] }[] = [];
    tier.onOpaque('mars', SERVICE_LEARN_UPDATE, (b) =>
      got.push({ at: clock.now() - T0, bytes: [...b] }),
    );
    tier.sendOpaque('eu1', 'mars', SERVICE_LEARN_UPDATE, new Uint8Array([1, 2, 3]));
    expect(tier.status().inFlight).toBe(1);
    await clock.advance(30 * MIN);
    expect(got).toEqual([{ at: expect.any(Number), bytes: [1, 2, 3] }]);
    expect(got[0]?.at).toBeGreaterThanOrEqual(240_000);
    expect(tier.status()).toMatchObject({ inFlight: 0, delivered: 1, expired: 0 });
    tier.stop();
  });

  it('syncs a CRDT document between eu1 and mars until both converge', async () => {
    const clock = new VirtualClock(T0);
    const tier = new InterplanetaryTier({ topology, clock });
    tier.start();
    const earth = CrdtReplica.create<{ notes: Record<string, string> }>({ notes: {} });
    const mars = CrdtReplica.fromBytes<{ notes: Record<string, string> }>(earth.save());
    const le = tier.syncCrdt('eu1', ['mars'], earth, 'mission-log');
    const lm = tier.syncCrdt('mars', ['eu1'], mars, 'mission-log');
    earth.change((d) => {
      d.notes.earth = 'launch window confirmed';
    });
    le.changed();
    mars.change((d) => {
      d.notes.mars = 'dust storm subsiding';
    });
    lm.changed();
    // Sync takes several round trips of 2 × 4 minutes, only inside contact windows.
    await clock.advance(4 * 60 * MIN);
    expect(earth.toJSON()).toEqual({
      notes: { earth: 'launch window confirmed', mars: 'dust storm subsiding' },
    });
    expect(mars.toJSON()).toEqual(earth.toJSON());
    expect(tier.status().delivered).toBeGreaterThanOrEqual(2);
    tier.stop();
  });
});
