/**
 * Federated learning in `genesis up`: every tile trains a predictive-maintenance model on its own
 * (generated) sensor data, pods/hubs/regions aggregate it hierarchically (HierFAVG) and the
 * global node runs rounds in the background after start, with client-level DP (tiles clip,
 * the global node adds Gaussian noise and tracks ε; rounds stop at the budget). Each pod pass
 * is a secure-aggregation session with its tiles over the transport (tiles mask their own
 * updates; full SecAgg for small pods, SecAgg+ neighbourhoods for large ones), so no tile's
 * update crosses the fabric in the clear. Nothing runs before start, so boot time is
 * unchanged; tile data is generated on the first request.
 * Status: round, test accuracy, ε spent, and secure pod sessions (with aborted ones).
 */
import type { TimerHandle } from '../../core/index.ts';
import {
  attachLearners,
  type GlobalCoordinator,
  type HierSettings,
  mlp,
  PDM_FEATURES,
  serializeModel,
  testSet,
} from '../../learn/index.ts';
import type { FabricPlugin, FabricPluginFactory } from '../plugin.ts';

/** Pause between background rounds. */
export const UP_ROUND_INTERVAL_MS = 2_000;
/** First round starts this long after the fabric is up. */
export const UP_FIRST_ROUND_DELAY_MS = 1_000;
/** Longest `stop` waits for a round in flight before the fabric is torn down under it. */
export const UP_STOP_WAIT_MS = 500;
/** ε budget of a `genesis up` run (δ = 1e-5); training stops when the next round would exceed it. */
export const UP_EPSILON_BUDGET = 8;

/** Deadline of each secure-aggregation round between a pod and its tiles. */
export const UP_SECURE_ROUND_MS = 2_000;

/** Subject on which the global coordinator publishes each round's model (serializeModel bytes). */
export const GLOBAL_MODEL_SUBJECT = 'genesis.learn.global.model';

/** The learn plugin of `genesis up`. */
export const learnPlugin: FabricPluginFactory = (): FabricPlugin => {
  let coordinator: GlobalCoordinator | undefined;
  let modelSpec: HierSettings['model'] | undefined;
  let timer: TimerHandle | undefined;
  let inFlight: Promise<void> | undefined;
  let stopped = false;
  let errors = 0;
  // Cancels the next scheduled round; set in afterStart.
  let stopClock = (): void => {};
  return {
    name: 'learn',
    attach(fabric) {
      const tiles = fabric.nodesAt('tile').length;
      if (tiles === 0 || fabric.nodesAt('global').length === 0) return;
      const settings: HierSettings = {
        model: mlp(PDM_FEATURES.length, 16, 1),
        optimizer: { kind: 'sgd', lr: 0.2, momentum: 0.9 },
        batchSize: 16,
        windowsPerTile: 64,
        seed: 1,
        kappa: { tile: 10, pod: 2, hub: 1, region: 1 },
        tileDeadlineMs: 2_000,
        secagg: 'plus',
        secureRoundMs: UP_SECURE_ROUND_MS,
        dpClipNorm: 1,
        dropoutRate: 0,
      };
      modelSpec = settings.model;
      coordinator = attachLearners(fabric, settings, {
        strategy: 'fedavg',
        dp: { noiseMultiplier: 3, delta: 1e-5, budget: UP_EPSILON_BUDGET },
        expectedTiles: tiles,
        test: testSet(7, 500),
      });
    },
    afterStart(fabric) {
      const c = coordinator;
      if (c === undefined) return;
      const loop = (): void => {
        if (stopped) return;
        inFlight = c
          .runRound()
          .then((rec) => {
            if (rec === undefined) stopped = true;
            else if (modelSpec !== undefined) {
              // Other tiers (the DTN link to Mars) pick the new global model up from here.
              fabric.transport.publish(
                GLOBAL_MODEL_SUBJECT,
                serializeModel({ spec: modelSpec, params: c.params }),
                { headers: { round: String(rec.round) } },
              );
            }
          })
          .catch((e: unknown) => {
            errors++;
            fabric.logger.warn({ err: String(e) }, 'learn: round failed');
          })
          .finally(() => {
            inFlight = undefined;
            if (!stopped) timer = fabric.clock.setTimeout(loop, UP_ROUND_INTERVAL_MS);
          });
      };
      timer = fabric.clock.setTimeout(loop, UP_FIRST_ROUND_DELAY_MS);
      stopClock = () => {
        if (timer !== undefined) fabric.clock.clearTimer(timer);
      };
    },
    status() {
      const s = coordinator?.status();
      if (s === undefined) return {};
      return {
        round: s.round ?? 0,
        acc: s.accuracy ?? 0,
        eps: s.epsilon ?? 0,
        ...(s.secureSessions === undefined
          ? {}
          : { secure: s.secureSessions, ...(s.secureAborted ? { aborted: s.secureAborted } : {}) }),
        ...(coordinator?.budgetExhausted === true ? { budget: 'spent' } : {}),
        ...(errors > 0 ? { errors } : {}),
      };
    },
    async stop() {
      stopped = true;
      stopClock();
      const pending = inFlight;
      if (pending !== undefined)
        await Promise.race([pending, new Promise((r) => setTimeout(r, UP_STOP_WAIT_MS).unref())]);
    },
  };
};
