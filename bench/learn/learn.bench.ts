/**
 * Learn-layer benchmarks (issue "Benchmarks" table, rows not about SecAgg alone):
 * - the RDP accountant over 64 orders (TF Privacy's fractional 1.25…4.5 and integers 5…58)
 *   and 10^6 steps, against integer orders only (the binomial sum, no erfc series);
 * - one simulated round of N clients on a 10,657-parameter MLP with SecAgg+ and distributed
 *   DP (streamed: clients trained, masked and summed in batches; SecAgg clients on 2 worker
 *   threads), against FedAvg without SecAgg/DP at the same N. Each variant runs in its own
 *   child process so the reported peak RSS is its own; CPU time (all threads) is reported too,
 *   since wall time on a shared machine mostly measures the other jobs. N defaults to 100 so the
 *   case stays within the harness' ~30 s budget on a shared 2-core machine; set
 *   LEARN_BENCH_CLIENTS=10000 for the issue's size (figures measured at 10,000 in docs/learn.md).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { computeRdp, TF_PRIVACY_ORDERS } from '../../src/learn/index.ts';
import { type BenchCase, measure, row } from '../harness.ts';

const ORDERS_64 = TF_PRIVACY_ORDERS.slice(0, 64);
const INT_ORDERS_64 = Array.from({ length: 64 }, (_, i) => i + 2);

interface ChildResult {
  readonly ms: number;
  readonly cpuMs: number;
  readonly maxRssBytes: number;
  readonly failure: string | null;
  readonly secaggMs: number;
  readonly accuracy: number;
}

function runChild(variant: string, clients: number): ChildResult {
  const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
  const child = fileURLToPath(new URL('./learn-round-child.ts', import.meta.url));
  const out = execFileSync(process.execPath, [runTs, child, variant, String(clients)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  const line = out.trim().split('\n').pop() ?? '{}';
  return JSON.parse(line) as ChildResult;
}

const cases: BenchCase[] = [
  {
    name: 'rdp accountant 64 orders x 1e6 steps',
    async run() {
      const q = 0.01;
      const frac = await measure(
        'rdp-64',
        () => computeRdp({ q, noiseMultiplier: 1.1, steps: 1e6, orders: ORDERS_64 }),
        { timeMs: 1000 },
      );
      const ints = await measure(
        'rdp-int-64',
        () => computeRdp({ q, noiseMultiplier: 1.1, steps: 1e6, orders: INT_ORDERS_64 }),
        { timeMs: 1000 },
      );
      return [
        row(
          'rdp accountant, 64 orders (fractional+integer), 1e6 steps',
          frac.medianNs / 1000,
          'µs',
          'integer orders 2..65',
          ints.medianNs / 1000,
          'report µs',
        ),
      ];
    },
  },
  {
    name: 'simulated round secagg+ dp vs fedavg',
    run() {
      const clients = Number(process.env.LEARN_BENCH_CLIENTS ?? 100);
      const plain = runChild('fedavg', clients);
      const secure = runChild('secagg-dp', clients);
      if (secure.failure !== null) throw new Error(`secure round failed: ${secure.failure}`);
      return [
        row(
          `round of ${clients} clients, 10,657 params, SecAgg+ & DP: wall`,
          secure.ms,
          'ms',
          'FedAvg without SecAgg/DP',
          plain.ms,
          'completes',
        ),
        row(
          `round of ${clients} clients, 10,657 params, SecAgg+ & DP: CPU (all threads)`,
          secure.cpuMs,
          'ms',
          'FedAvg without SecAgg/DP',
          plain.cpuMs,
          'report',
        ),
        row(
          `round of ${clients} clients, 10,657 params, SecAgg+ & DP: peak RSS`,
          secure.maxRssBytes / 2 ** 20,
          'MiB',
          'FedAvg without SecAgg/DP',
          plain.maxRssBytes / 2 ** 20,
          'memory bounded',
        ),
      ];
    },
  },
];

export default cases;
