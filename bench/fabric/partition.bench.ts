/**
 * Leaf-link partitions with real nats-servers (region, region store, hub, two pods; both pods
 * reach the hub through the test WanRelay, which the hub advertises): how long until the hub
 * and the pod see the link gone when the WAN resets the connection, and when it silently
 * drops everything (only the servers' pings, `ping_interval: 5s`, `ping_max: 2`, notice), and
 * how long a healed link takes to come back (`leafnodes.reconnect: 1`). Each figure is set
 * against the configured value it follows from, measured in the same run.
 */
import { generateTopology } from '../../src/core/index.ts';
import { type FabricServers, startFabricServers } from '../../test/fabric/harness.ts';
import { type BenchCase, type BenchRow, row } from '../harness.ts';

const HUB = 'eu1.h1';
const POD = 'eu1.h1.p2';
/** Poll period of the monitoring endpoints. */
const POLL_MS = 20;
/** Give up on one phase after this long. */
const PHASE_MS_MAX = 30_000;
/** `ping_interval` × `ping_max` in the generated configs. */
const PING_WINDOW_MS = 5_000 * 2;
/** `leafnodes.reconnect` in the generated configs. */
const RECONNECT_MS = 1_000;

async function leafs(s: FabricServers, node: string): Promise<number> {
  return (await s.monitor(node, 'varz')).leafnodes as number;
}

/** Milliseconds until `check` holds. */
async function until(check: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (performance.now() - t0 > PHASE_MS_MAX) throw new Error('phase did not finish');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function partition(): Promise<BenchRow[]> {
  const s = await startFabricServers(generateTopology({ regions: 1, hubs: 1, pods: 2, tiles: 1 }), {
    relayed: [HUB],
  });
  try {
    const relay = s.relays.get(HUB);
    if (relay === undefined) throw new Error('no relay');
    // Hub: p1, p2 and its own uplink to the region.
    await until(async () => (await leafs(s, HUB)) === 3 && (await leafs(s, POD)) === 1);
    const up = async (): Promise<boolean> =>
      (await leafs(s, HUB)) === 3 && (await leafs(s, POD)) === 1;
    relay.cut(POD);
    const resetHub = await until(async () => (await leafs(s, HUB)) === 2);
    relay.heal(POD);
    const relinkAfterReset = await until(up);
    relay.cut(POD, { silent: true });
    const [silentHub, silentPod] = await Promise.all([
      until(async () => (await leafs(s, HUB)) === 2),
      until(async () => (await leafs(s, POD)) === 0),
    ]);
    relay.heal(POD);
    const relinkAfterSilent = await until(up);
    return [
      row(
        'fabric: silent WAN partition, hub sees the leaf link down',
        silentHub,
        'ms',
        'ping_interval × ping_max',
        PING_WINDOW_MS,
        'report',
      ),
      row(
        'fabric: silent WAN partition, pod sees its uplink down',
        silentPod,
        'ms',
        'ping_interval × ping_max',
        PING_WINDOW_MS,
        'report',
      ),
      row(
        'fabric: reset partition, hub sees the leaf link down',
        resetHub,
        'ms',
        'silent partition, hub',
        silentHub,
        'report',
      ),
      row(
        'fabric: healed leaf link back (after a reset cut)',
        relinkAfterReset,
        'ms',
        'leafnodes.reconnect',
        RECONNECT_MS,
        'report',
      ),
      row(
        'fabric: healed leaf link back (after a silent cut)',
        relinkAfterSilent,
        'ms',
        'leafnodes.reconnect',
        RECONNECT_MS,
        'report',
      ),
    ];
  } finally {
    await s.stop();
  }
}

const cases: BenchCase[] = [{ name: 'leaf-partition', run: partition }];
export default cases;
