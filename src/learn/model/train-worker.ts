/**
 * Worker-thread entry of the training pool: receives {@link TrainTask}s, answers with
 * {@link TrainResult}s (parameters transferred, not copied). Loaded by `pool.ts` through tsx; imports
 * only the run-time-free kernels so a worker starts in milliseconds.
 */
import { parentPort } from 'node:worker_threads';
import { runTraining, type TrainTask } from './train-kernel.ts';

interface Request {
  readonly id: number;
  readonly task: TrainTask;
}

const port = parentPort;
if (port !== null) {
  port.on('message', (req: Request) => {
    try {
      const result = runTraining(req.task);
      port.postMessage({ id: req.id, result }, [result.params.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({ id: req.id, error: e instanceof Error ? e.message : String(e) });
    }
  });
  port.postMessage({ ready: true });
}
