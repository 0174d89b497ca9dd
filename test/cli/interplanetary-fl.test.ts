import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dtnPlugin } from '../../src/cli/plugins/dtn.ts';
import { learnPlugin } from '../../src/cli/plugins/learn.ts';
import { EmbeddedFabric, generateTopology, SeededRng, VirtualClock } from '../../src/core/index.ts';

describe('genesis up --interplanetary: federated-learning models reach Mars as bundles', () => {
  it('carries each global model over the scheduled DTN contacts and Mars decodes it', async () => {
    const clock = new VirtualClock(0);
    const dataDir = mkdtempSync(join(tmpdir(), 'genesis-ipn-'));
    const fabric = new EmbeddedFabric({
      topology: generateTopology({ regions: 1, hubs: 1, pods: 1, tiles: 2, interplanetary: true }),
      clock,
      rng: new SeededRng(3),
      dataDir,
    });
    const options = { dataDir, interplanetary: true, verbose: false };
    const plugins = [learnPlugin(options), dtnPlugin(options)];
    for (const p of plugins) await p.attach(fabric, options);
    await fabric.start();
    for (const p of plugins) await p.afterStart?.(fabric);
    const dtn = plugins[1]!;
    // Run 45 virtual minutes in 100 ms steps, letting real promise chains (training rounds,
    // request/reply up the hierarchy) settle between steps.
    for (let i = 0; i < 27_000 && Number(dtn.status()['flReceived'] ?? 0) === 0; i++) {
      await clock.advance(100);
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    const s = dtn.status();
    for (const p of [...plugins].reverse()) await p.stop?.();
    await fabric.stop();
    expect(Number(plugins[0]!.status()['round'])).toBeGreaterThan(0);
    expect(Number(s['flSent'])).toBeGreaterThan(0);
    expect(Number(s['flReceived'])).toBeGreaterThan(0);
    // Nothing arrives before the one-way light time of the link (240 s).
    expect(clock.now()).toBeGreaterThanOrEqual(240_000);
  }, 120_000);
});
