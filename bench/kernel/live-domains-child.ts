/**
 * Child process of the live-domains benchmark (bench/kernel/kernel.bench.ts): measures RSS in a
 * fresh process so earlier cases' garbage cannot hide (or invert) the domains' cost.
 *   node --expose-gc bin/run-ts.js bench/kernel/live-domains-child.ts N
 * Prints one JSON line: RSS of the process with the kernel loaded and the module compiled but
 * no domain (`rssBeforeBytes`, the "empty process" baseline), RSS after spawning N idle domains
 * (`rssAfterBytes`), the spawn time, and whether the last domain still answers a call.
 */
import { Kernel, loadModule } from '../../src/kernel/index.ts';
import { watToWasm } from '../../src/toolchain/index.ts';

const SMALL = `(module (memory 1) (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) (local.get 2)))`;

const n = Number(process.argv[2] ?? '10000');
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const settle = (): number => {
  gc();
  gc();
  return process.memoryUsage().rss;
};

const km = loadModule(await watToWasm(SMALL));
const k = new Kernel({ domainsMax: n + 10 });
// Warm the spawn path once (JIT code is process overhead, not per-domain cost).
k.kill(k.spawn(km, { memoryBytes: 65536 }).domain);
const rssBeforeBytes = settle();
const t0 = performance.now();
for (let i = 0; i < n; i++) k.spawn(km, { memoryBytes: 65536 });
const ms = performance.now() - t0;
const rssAfterBytes = settle();
const ep = k.createEndpoint();
const last = [...k.domains.values()].at(-1);
let answers = false;
if (last !== undefined) {
  k.bindReceiver(last, ep);
  answers = k.call(ep, 1, 9n).mr0 === 9n;
}
process.stdout.write(
  `${JSON.stringify({ domains: k.stats.domainsLive, rssBeforeBytes, rssAfterBytes, ms, answers })}\n`,
);
