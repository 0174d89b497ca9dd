/**
 * Worker threads that run a TypeScript entry module. Node does not share tsx's ESM hooks across
 * threads, so each worker registers them itself (from the ESM build of tsx's API: its CJS build
 * cannot register ESM hooks from an eval worker) before importing the entry. A failure to load
 * is posted to the parent as `{ fatal }`. Used by the training pool and the SecAgg client hosts.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

const BOOTSTRAP = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.tsxApi)
  .then((m) => { m.register(); return import(workerData.entry); })
  .catch((e) => parentPort.postMessage({ fatal: String(e && e.stack || e) }));
`;

/** Starts an unref'd worker thread running the TypeScript module at `entry`. */
export function tsWorker(entry: URL): Worker {
  const require = createRequire(import.meta.url);
  const tsxApi = pathToFileURL(require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { tsxApi, entry: entry.href } });
  worker.unref();
  return worker;
}

/** A worker's readiness: `ready` settles when the worker reports `{ ready }` or fails to start. */
export interface Readiness {
  readonly ready: Promise<void>;
  readonly onReady: () => void;
  readonly onFail: (e: unknown) => void;
}

/** A fresh {@link Readiness}; an unawaited failure is not an unhandled rejection. */
export function readiness(): Readiness {
  let onReady: () => void = () => {};
  let onFail: (e: unknown) => void = () => {};
  const ready = new Promise<void>((res, rej) => {
    onReady = res;
    onFail = rej;
  });
  ready.catch(() => {});
  return { ready, onReady, onFail };
}
