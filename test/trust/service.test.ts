import { describe, expect, it } from 'vitest';
import { EmbeddedFabric, generateTopology, VirtualClock } from '../../src/core/index.ts';
import {
  attachTrust,
  LOG_CHECKPOINT_INTERVAL_MS,
  leafHash,
  verifyInclusion,
} from '../../src/trust/index.ts';

describe('trust in the embedded fabric', () => {
  it('nodes register identities in their region log; hubs witness its checkpoints', async () => {
    const clock = new VirtualClock(1_800_000_000_000);
    const topology = generateTopology({ regions: 1, hubs: 3, pods: 1, tiles: 2 });
    const fabric = new EmbeddedFabric({ topology, clock });
    const t = attachTrust(fabric);
    await fabric.start();
    try {
      for (let i = 0; i < 4; i++) await clock.advance(LOG_CHECKPOINT_INTERVAL_MS);
      const [region] = [...t.logs.values()];
      if (region === undefined) throw new Error('no region log');
      const inRegion = [...topology.nodes.values()].filter((n) => n.region !== undefined).length;
      expect(region.durableLog?.size).toBe(inRegion);
      expect(region.lastWitnessed).toEqual({ size: inRegion, cosigners: 3 });
      expect([...t.witnesses.values()].every((w) => w.cosigned >= 1)).toBe(true);
      // Each registration is provably in the log.
      const log = region.durableLog;
      if (log === undefined) throw new Error('no log');
      const entry = log.entry(0);
      expect(verifyInclusion(leafHash(entry), 0, log.size, log.inclusionProof(0), log.root)).toBe(
        true,
      );
      expect(JSON.parse(new TextDecoder().decode(entry)).type).toBe('genesis.identity/v1');
      // Composite identities are lazy: only the region made one (to sign checkpoints).
      const ready = [...t.identities.values()].filter(
        (i) => i.status().composite === 'ready',
      ).length;
      expect(ready).toBe(1);
    } finally {
      await fabric.stop();
    }
  });
});
