/**
 * The per-neighbour public-key work of a client's round, spread over the worker pool (pool.ts):
 * round 1's X25519 agreements for the share channel, round 4's Ed25519 verifications of the
 * consistency signatures. Each is tens of milliseconds on one core at a few hundred
 * neighbours (X25519 ≈ 60 µs, Ed25519 verification ≈ 100 µs in libsodium here: the primitives bench), and each
 * neighbour is independent.
 */
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { channelKey, verifyEd25519, x25519SharedRaw } from './keys.ts';
import {
  SECAGG_KEY_BYTES,
  SECAGG_PARALLEL_CURVE_OPS_MIN,
  SECAGG_SIGNATURE_BYTES,
} from './limits.ts';
import { type PoolJobOptions, poolThreadsFor, runPoolJob, TASK_OK, TASK_REJECTED } from './pool.ts';

/** Threads for `ops` curve operations: `requested` if given, else one per core for a large batch. */
export function curveThreadsFor(ops: number, requested?: number): number {
  return poolThreadsFor(ops >= SECAGG_PARALLEL_CURVE_OPS_MIN, requested);
}

function concat(parts: readonly Uint8Array[], each: number): Uint8Array {
  const out = new Uint8Array(parts.length * each);
  for (let i = 0; i < parts.length; i++) out.set(parts[i] as Uint8Array, i * each);
  return out;
}

/**
 * The share-channel key with each peer: channelKey(X25519(own, peer), session), in the order of
 * `peers`, on `threads` threads. `options.meanwhile` runs on the caller while workers start.
 * @throws {SecAggError} SECAGG_MALFORMED naming the first peer whose key is invalid or small-order.
 */
export function channelKeys(
  ownPrivateRaw: Uint8Array,
  peers: readonly { readonly id: number; readonly publicRaw: Uint8Array }[],
  sessionId: Uint8Array,
  threads: number,
  options: PoolJobOptions = {},
): Uint8Array[] {
  for (const p of peers)
    if (!(p.publicRaw instanceof Uint8Array) || p.publicRaw.length !== SECAGG_KEY_BYTES)
      throw new SecAggError(SecAggErrorCode.Malformed, `public key of client ${p.id} is invalid`, {
        details: { id: p.id },
      });
  const m = peers.length;
  const keys = new Uint8Array(new SharedArrayBuffer(m * SECAGG_KEY_BYTES));
  const status = new Int32Array(new SharedArrayBuffer(4 * m));
  const privates = Uint8Array.from(ownPrivateRaw);
  try {
    runPoolJob(
      {
        kind: 'agree',
        tasks: m,
        payload: {
          sessionId: Uint8Array.from(sessionId),
          privates,
          publics: concat(
            peers.map((p) => p.publicRaw),
            SECAGG_KEY_BYTES,
          ),
          keys: keys.buffer,
          status: status.buffer,
        },
        runInline: (i) => {
          let shared: Uint8Array;
          try {
            shared = x25519SharedRaw(ownPrivateRaw, (peers[i] as (typeof peers)[number]).publicRaw);
          } catch {
            status[i] = TASK_REJECTED;
            return;
          }
          keys.set(channelKey(shared, sessionId), i * SECAGG_KEY_BYTES);
          shared.fill(0);
          status[i] = TASK_OK;
        },
      },
      threads,
      options,
    );
    const out: Uint8Array[] = [];
    for (let i = 0; i < m; i++) {
      if (status[i] !== TASK_OK)
        throw new SecAggError(
          SecAggErrorCode.Malformed,
          `X25519 agreement with client ${(peers[i] as (typeof peers)[number]).id} failed (small-order or invalid key)`,
          { details: { id: (peers[i] as (typeof peers)[number]).id } },
        );
      out.push(keys.slice(i * SECAGG_KEY_BYTES, (i + 1) * SECAGG_KEY_BYTES));
    }
    return out;
  } finally {
    // Keys sat in shared memory; the copies above are the only ones left.
    keys.fill(0);
    privates.fill(0);
  }
}

/**
 * Verifies every signature of `items` over `message` on `threads` threads; returns the index of
 * the first one that is not a valid Ed25519 signature by its key, or −1 when all are.
 */
export function firstInvalidEd25519(
  message: Uint8Array,
  items: readonly { readonly publicRaw: Uint8Array; readonly signature: Uint8Array }[],
  threads: number,
  options: PoolJobOptions = {},
): number {
  // Malformed entries fail without a task (they cannot be packed into the shared arrays).
  const bad = items.findIndex(
    (it) =>
      !(it.publicRaw instanceof Uint8Array) ||
      it.publicRaw.length !== SECAGG_KEY_BYTES ||
      !(it.signature instanceof Uint8Array) ||
      it.signature.length !== SECAGG_SIGNATURE_BYTES,
  );
  const m = bad === -1 ? items.length : bad;
  const status = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, m)));
  runPoolJob(
    {
      kind: 'verify',
      tasks: m,
      payload: {
        message: Uint8Array.from(message),
        publics: concat(
          items.slice(0, m).map((it) => it.publicRaw),
          SECAGG_KEY_BYTES,
        ),
        signatures: concat(
          items.slice(0, m).map((it) => it.signature),
          SECAGG_SIGNATURE_BYTES,
        ),
        status: status.buffer,
      },
      runInline: (i) => {
        const it = items[i] as (typeof items)[number];
        status[i] = verifyEd25519(it.publicRaw, message, it.signature) ? TASK_OK : TASK_REJECTED;
      },
    },
    threads,
    options,
  );
  for (let i = 0; i < m; i++) if (status[i] !== TASK_OK) return i;
  return bad;
}
