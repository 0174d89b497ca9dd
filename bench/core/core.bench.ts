/**
 * Core benchmarks (issue 2): boot time of the default topology, and memory per idle simulated
 * tile at 1,000 and 10,000 tiles with heartbeats flowing.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EmbeddedFabric, generateTopology } from '../../src/core/index.ts';
import { type BenchCase, bestOf, row } from '../harness.ts';

interface ChildResult {
  tiles: number;
  nodes: number;
  before: number;
  after: number;
  bootMs: number;
  pending: number[];
  heartbeatsSent: number;
  heartbeatsReceived: number;
  dropped: number;
}

/** Heartbeat periods the child process waits before reading the queue depth. */
const PERIODS = 3;

function runChild(tiles: number): ChildResult {
  const child = fileURLToPath(new URL('./tile-memory-child.ts', import.meta.url));
  const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', runTs, child, String(tiles), String(PERIODS)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as ChildResult;
}

const MB = 1024 * 1024;

const cases: BenchCase[] = [
  {
    name: 'boot default topology',
    async run() {
      const topoMs = await bestOf(20, () => generateTopology());
      const bootMs = await bestOf(10, async () => {
        const f = new EmbeddedFabric({ topology: generateTopology() });
        await f.start();
        await f.stop();
      });
      return [
        row(
          'core: boot+stop default topology (24 nodes)',
          bootMs,
          'ms',
          'build topology model',
          topoMs,
          '< 1000 ms',
        ),
      ];
    },
  },
  {
    name: 'memory per idle tile',
    run() {
      const small = runChild(1_000);
      const large = runChild(10_000);
      const perTile = (r: ChildResult) => (r.after - r.before) / r.tiles / 1024;
      return [
        row(
          'core: RSS with 10,000 idle tiles',
          large.after / MB,
          'MB',
          'same process before boot',
          large.before / MB,
          '< 1024 MB',
        ),
        row(
          'core: memory per idle tile at 10,000 tiles',
          perTile(large),
          'KB/tile',
          'memory per idle tile at 1,000 tiles',
          perTile(small),
          '< 100 KB/tile',
        ),
        row(
          'core: transport queue after 3 heartbeat periods (10,000 tiles)',
          large.pending.at(-1) ?? 0,
          'msgs',
          // The ratio is the share of one period's traffic still queued: 0 means the fabric keeps
          // up (an empty queue against an empty queue would be 0/0).
          'heartbeats published per period',
          large.heartbeatsSent / PERIODS,
          'no growth (ratio ≈ 0)',
        ),
        row('core: boot 10,000 tiles', large.bootMs, 'ms', 'boot 1,000 tiles', small.bootMs),
      ];
    },
  },
];
export default cases;
