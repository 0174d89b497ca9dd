/**
 * Child process of the learn benchmark: runs ONE simulated round of N clients (default 10,000)
 * on a 10,657-parameter MLP (12 → 96 → 96 → 1) in a fresh process, so its peak RSS is its own,
 * and prints one JSON line. Arguments: variant — `fedavg` (no SecAgg, no DP: streamed weighted
 * mean) or `secagg-dp` (SecAgg+ with distributed DP noise, uniform weights, clipping; clients
 * trained and masked in streaming batches, SecAgg clients hosted on 2 worker threads, each
 * client's noise share and quantization done on its host) — and N.
 * Reports wall time, CPU time of the whole process (all threads), the secure part, peak RSS.
 */
import {
  defaultConfig,
  mlp,
  PDM_FEATURES,
  runSimulation,
  TrainPool,
} from '../../src/learn/index.ts';

const variant = process.argv[2] ?? 'fedavg';
const clients = Number(process.argv[3] ?? 10_000);
const base = {
  ...defaultConfig(clients, 1),
  clientsPerRound: clients,
  model: mlp(PDM_FEATURES.length, 96, 2),
  windowsPerClient: 16,
  localSteps: 1,
  batchSize: 8,
  testWindows: 500,
};
const config =
  variant === 'fedavg'
    ? base
    : {
        ...base,
        secagg: 'plus' as const,
        dp: {
          epsilon: 10,
          delta: 1e-5,
          clipNorm: 1,
          adaptiveClipping: false,
          placement: 'distributed' as const,
        },
      };
const pool = new TrainPool(2);
const t0 = performance.now();
const cpu0 = process.cpuUsage();
try {
  const r = await runSimulation(config, { pool });
  const rec = r.rounds[0];
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `${JSON.stringify({
      variant,
      clients,
      paramCount: r.paramCount,
      ms: performance.now() - t0,
      cpuMs: (cpu.user + cpu.system) / 1000,
      roundMs: rec?.durationMs,
      secaggMs: rec?.secaggMs,
      participants: rec?.participants,
      failure: rec?.failure ?? null,
      accuracy: r.finalAccuracy,
      epsilon: r.epsilon,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    })}\n`,
  );
} finally {
  await pool.close();
}
