/**
 * Worker-thread entry of {@link WorkerClientHost}: hosts a shard of the simulated SecAgg clients
 * of one session (their keys and protocol state live here) and runs their protocol steps. Loaded
 * through tsx by `secagg-hosts.ts`. Messages: `open` (session config, client indices, one seed
 * per client or none for OpenSSL's generator), `step` (round and steps), `release`.
 */
import { parentPort } from 'node:worker_threads';
import { CryptoRng, type Rng, SeededRng } from '../../core/index.ts';
import {
  bytePacker,
  hostStepInput,
  isSecAggError,
  SecAggClient,
  type SecAggClientStep,
  type SecAggInputEncoding,
  type SecAggSessionConfig,
  type ShareMsg,
  secAggClientStep,
} from '../secagg/index.ts';

/**
 * The same share message with its ciphertexts (and hybrid KEM ciphertexts) copied into one
 * buffer and referenced as views, so that posting it moves one buffer instead of cloning k.
 */
function packShareMessage(msg: ShareMsg): ShareMsg {
  const ctBytes = msg.shares.reduce((a, sh) => a + sh.ct.length + (sh.kemCt?.length ?? 0), 0);
  const view = bytePacker(ctBytes);
  return {
    ...msg,
    shares: msg.shares.map((sh) =>
      sh.kemCt === undefined
        ? { to: sh.to, ct: view(sh.ct) }
        : { to: sh.to, ct: view(sh.ct), kemCt: view(sh.kemCt) },
    ),
  };
}

type Request =
  | {
      readonly op: 'open';
      readonly id: number;
      readonly config: SecAggSessionConfig;
      readonly indices: readonly number[];
      /** One 32-bit seed per client; absent: keys from OpenSSL's generator. */
      readonly seeds?: readonly number[];
      /** How the clients encode raw inputs (noise share, quantization). */
      readonly encoding?: SecAggInputEncoding;
    }
  | {
      readonly op: 'step';
      readonly id: number;
      readonly round: number;
      readonly steps: SecAggClientStep[];
    }
  | { readonly op: 'release'; readonly id: number };

const port = parentPort;
if (port !== null) {
  let clients = new Map<number, SecAggClient>();
  let encoding: SecAggInputEncoding | undefined;
  const handle = (req: Request): void => {
    if (req.op === 'open') {
      clients = new Map();
      encoding = req.encoding;
      const crypto = new CryptoRng();
      req.indices.forEach((index, j) => {
        const seed = req.seeds?.[j];
        const rng: Rng = seed === undefined ? crypto : new SeededRng(seed);
        clients.set(
          index,
          new SecAggClient({
            id: index + 1,
            config: req.config,
            rng,
            survivorDigestOnly: true,
            // The hosts already run clients on every core; a client's own worker pool would
            // only add threads competing for the same cores (and block this one while waiting).
            maskThreads: 1,
          }),
        );
      });
      port.postMessage({ id: req.id });
      return;
    }
    if (req.op === 'release') {
      clients = new Map();
      encoding = undefined;
      port.postMessage({ id: req.id });
      return;
    }
    const results = [];
    const transfer: ArrayBuffer[] = [];
    for (const s of req.steps) {
      const client = clients.get(s.index);
      const t0 = performance.now();
      if (client === undefined) throw new Error(`no client ${s.index} in this worker`);
      try {
        // The client's noise share and quantization happen here, on its host (as on a device).
        let message = secAggClientStep(client, req.round, s.request, hostStepInput(s, encoding));
        // A masked vector that owns its whole buffer moves to the main thread without a copy.
        if (message.kind === 'masked-input' && message.y.byteLength === message.y.buffer.byteLength)
          transfer.push(message.y.buffer as ArrayBuffer);
        // k ciphertexts cross as one transferred buffer (views into it), not k small ones.
        if (message.kind === 'share') {
          message = packShareMessage(message);
          const first = message.shares[0]?.ct.buffer;
          if (first !== undefined) transfer.push(first as ArrayBuffer);
        }
        results.push({ index: s.index, message, ms: performance.now() - t0 });
      } catch (e) {
        if (!isSecAggError(e)) throw e;
        results.push({
          index: s.index,
          error: { code: e.code, message: e.message },
          ms: performance.now() - t0,
        });
      }
    }
    port.postMessage({ id: req.id, results }, transfer);
  };
  port.on('message', (req: Request) => {
    try {
      handle(req);
    } catch (e) {
      port.postMessage({
        id: req.id,
        fatal: e instanceof Error ? (e.stack ?? e.message) : String(e),
      });
    }
  });
  port.postMessage({ ready: true });
}
