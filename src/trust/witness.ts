/**
 * Witnesses and witnessed-checkpoint clients (c2sp.org/tlog-witness semantics, cosignature/v1).
 *
 * A witness remembers, per log origin, the largest checkpoint it has cosigned. It cosigns a new
 * checkpoint only if the log's signature verifies and an RFC 9162 consistency proof shows the
 * new tree extends the remembered one. A client accepts a checkpoint only with cosignatures
 * from at least `quorum` of its n configured witnesses. With quorum > n/2 two different trees
 * of the same log can never both reach a quorum, because an honest witness cosigns only one of
 * them: a split view is detected (and refused) instead of silently served.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import type { Clock } from '../core/index.ts';
import { bytesEqual, fromBase64Strict, toBase64, toHex } from './bytes.ts';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';
import { EMPTY_ROOT, verifyConsistency } from './merkle.ts';
import {
  type Checkpoint,
  type CosignatureVerifier,
  type Cosigner,
  type NoteSignature,
  type NoteVerifier,
  openNote,
  parseCheckpoint,
  parseNote,
} from './note.ts';

/** Largest clock skew tolerated for cosignature timestamps in the future. */
export const COSIGNATURE_FUTURE_SKEW_MS_MAX = 5 * 60_000;

/** What a witness remembers about one log. */
export interface WitnessedHead {
  readonly size: number;
  readonly root: Uint8Array;
}

/** Witness state store, per log origin. */
export interface WitnessState {
  get(origin: string): WitnessedHead | undefined;
  set(origin: string, head: WitnessedHead): void;
}

/** In-memory witness state (tests and ephemeral fabrics). */
export class MemoryWitnessState implements WitnessState {
  private readonly heads = new Map<string, WitnessedHead>();
  get(origin: string): WitnessedHead | undefined {
    return this.heads.get(origin);
  }
  set(origin: string, head: WitnessedHead): void {
    this.heads.set(origin, head);
  }
}

/**
 * Witness state in a JSON file, replaced atomically (write, fsync, rename): a witness that
 * forgot a cosigned head after a crash could be tricked into cosigning a fork.
 */
export class FileWitnessState implements WitnessState {
  private readonly heads = new Map<string, WitnessedHead>();
  constructor(private readonly path: string) {
    if (!existsSync(path)) return;
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<
      string,
      { size: number; root: string }
    >;
    for (const [origin, h] of Object.entries(raw)) {
      const root = fromBase64Strict(h.root);
      if (root === undefined || !Number.isSafeInteger(h.size))
        throw new TrustError(
          TRUST_ERROR_CODES.keyFormat,
          `${path}: bad witness state for ${origin}`,
        );
      this.heads.set(origin, { size: h.size, root });
    }
  }
  get(origin: string): WitnessedHead | undefined {
    return this.heads.get(origin);
  }
  set(origin: string, head: WitnessedHead): void {
    this.heads.set(origin, head);
    const out: Record<string, { size: number; root: string }> = {};
    for (const [o, h] of this.heads) out[o] = { size: h.size, root: toBase64(h.root) };
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(out)}\n`, { mode: 0o600 });
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
  }
}

/** A log a witness follows. */
export interface WitnessedLog {
  readonly origin: string;
  readonly verifiers: readonly NoteVerifier[];
}

/** An add-checkpoint request (tlog-witness): the size the submitter believes the witness has seen, a proof from it, the checkpoint. */
export interface AddCheckpointRequest {
  readonly oldSize: number;
  readonly consistency: readonly Uint8Array[];
  readonly checkpoint: string;
}

/** A witness. */
export class Witness {
  constructor(
    private readonly init: {
      cosigner: Cosigner;
      logs: readonly WitnessedLog[];
      state: WitnessState;
      clock: Clock;
    },
  ) {}

  /** The witness name (its cosignature key name). */
  get name(): string {
    return this.init.cosigner.name;
  }

  /** The size this witness last cosigned for `origin` (0 if none). */
  knownSize(origin: string): number {
    return this.init.state.get(origin)?.size ?? 0;
  }

  /**
   * Verifies and cosigns a checkpoint.
   * @throws {TrustError} TRUST_BAD_SIGNATURE (unknown log or bad log signature),
   *   TRUST_INCONSISTENT (stale oldSize, with `details.knownSize`; or a failed consistency proof),
   *   TRUST_ROLLBACK (smaller than known), TRUST_SPLIT_VIEW (same size, different root).
   */
  addCheckpoint(req: AddCheckpointRequest): NoteSignature {
    const parsed = parseNote(req.checkpoint);
    const cp = parseCheckpoint(parsed.text);
    const log = this.init.logs.find((l) => l.origin === cp.origin);
    if (log === undefined)
      throw new TrustError(
        TRUST_ERROR_CODES.badSignature,
        `witness ${this.name} does not follow log ${cp.origin}`,
      );
    openNote(req.checkpoint, log.verifiers);
    const known = this.init.state.get(cp.origin) ?? { size: 0, root: EMPTY_ROOT };
    if (req.oldSize !== known.size) {
      throw new TrustError(
        TRUST_ERROR_CODES.inconsistent,
        `witness ${this.name} knows size ${known.size}, not ${req.oldSize}`,
        {
          details: { knownSize: known.size },
        },
      );
    }
    if (cp.size < known.size)
      throw new TrustError(
        TRUST_ERROR_CODES.rollback,
        `checkpoint size ${cp.size} < cosigned size ${known.size}`,
      );
    if (cp.size === known.size) {
      if (!bytesEqual(cp.root, known.root)) {
        throw new TrustError(
          TRUST_ERROR_CODES.splitView,
          `log ${cp.origin} shows two roots for size ${cp.size}`,
          {
            details: { size: cp.size, seen: toHex(known.root), offered: toHex(cp.root) },
          },
        );
      }
    } else if (
      known.size > 0 &&
      !verifyConsistency(known.size, cp.size, req.consistency, known.root, cp.root)
    ) {
      throw new TrustError(
        TRUST_ERROR_CODES.inconsistent,
        `checkpoint ${cp.size} is not consistent with cosigned ${known.size}`,
        {
          details: { knownSize: known.size },
        },
      );
    }
    this.init.state.set(cp.origin, { size: cp.size, root: cp.root });
    return this.init.cosigner.cosign(
      new TextEncoder().encode(parsed.text),
      this.init.clock.now() / 1000,
    );
  }
}

/** A client's trust policy for one log. */
export interface CheckpointPolicy {
  readonly origin: string;
  readonly logVerifiers: readonly NoteVerifier[];
  readonly witnesses: readonly CosignatureVerifier[];
  /** Cosignatures required (k of n). */
  readonly quorum: number;
}

/** A checkpoint accepted under a policy. */
export interface WitnessedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: string;
  readonly cosigners: readonly string[];
}

/**
 * Accepts a checkpoint only if the log signed it and at least `quorum` distinct configured
 * witnesses cosigned it. Cosignatures dated more than {@link COSIGNATURE_FUTURE_SKEW_MS_MAX} in
 * the future are not counted.
 * @throws {TrustError} TRUST_BAD_SIGNATURE (with `details.cosigners`, `details.quorum`).
 */
export function verifyWitnessedCheckpoint(
  note: string,
  policy: CheckpointPolicy,
  clock?: Clock,
): WitnessedCheckpoint {
  if (
    !Number.isInteger(policy.quorum) ||
    policy.quorum < 1 ||
    policy.quorum > policy.witnesses.length
  ) {
    throw new TrustError(
      TRUST_ERROR_CODES.badSignature,
      `quorum ${policy.quorum} is not in [1, ${policy.witnesses.length}]`,
    );
  }
  const { note: parsed } = openNote(note, policy.logVerifiers);
  const checkpoint = parseCheckpoint(parsed.text);
  if (checkpoint.origin !== policy.origin)
    throw new TrustError(
      TRUST_ERROR_CODES.badSignature,
      `checkpoint origin ${checkpoint.origin} is not ${policy.origin}`,
    );
  const text = new TextEncoder().encode(parsed.text);
  const cosigners: string[] = [];
  for (const w of policy.witnesses) {
    const line = parsed.signatures.find((s) => s.name === w.name && s.keyId === w.keyId);
    if (line === undefined || cosigners.includes(w.name)) continue;
    if (!w.verify(text, line.signature))
      throw new TrustError(
        TRUST_ERROR_CODES.badSignature,
        `cosignature of ${w.name} does not verify`,
      );
    const t = w.timestampOf(line.signature);
    if (
      clock !== undefined &&
      t !== undefined &&
      t * 1000 > clock.now() + COSIGNATURE_FUTURE_SKEW_MS_MAX
    )
      continue;
    cosigners.push(w.name);
  }
  if (cosigners.length < policy.quorum) {
    throw new TrustError(
      TRUST_ERROR_CODES.badSignature,
      `checkpoint has ${cosigners.length} witness cosignatures, needs ${policy.quorum}`,
      {
        details: { cosigners, quorum: policy.quorum },
      },
    );
  }
  return { checkpoint, note, cosigners };
}

/**
 * A client's memory of the newest witnessed checkpoint of a log. Every newer checkpoint must
 * come with a consistency proof from the remembered one; a different root at the same size is
 * a split view, a smaller size a rollback.
 */
export class CheckpointTracker {
  private current: WitnessedCheckpoint | undefined;

  constructor(
    private readonly policy: CheckpointPolicy,
    private readonly clock?: Clock,
  ) {}

  /** The newest accepted checkpoint. */
  get latest(): WitnessedCheckpoint | undefined {
    return this.current;
  }

  /**
   * Accepts `note` if witnessed and consistent with the previous checkpoint.
   * @throws {TrustError} TRUST_BAD_SIGNATURE, TRUST_SPLIT_VIEW, TRUST_ROLLBACK, TRUST_INCONSISTENT.
   */
  update(note: string, consistency: readonly Uint8Array[] = []): WitnessedCheckpoint {
    const next = verifyWitnessedCheckpoint(note, this.policy, this.clock);
    const prev = this.current?.checkpoint;
    if (prev !== undefined) {
      const c = next.checkpoint;
      if (c.size === prev.size && !bytesEqual(c.root, prev.root)) {
        throw new TrustError(
          TRUST_ERROR_CODES.splitView,
          `two witnessed roots for size ${c.size} of ${c.origin}`,
          {
            details: { size: c.size, a: toHex(prev.root), b: toHex(c.root) },
          },
        );
      }
      if (c.size < prev.size)
        throw new TrustError(
          TRUST_ERROR_CODES.rollback,
          `checkpoint ${c.size} is older than accepted ${prev.size}`,
        );
      if (
        c.size > prev.size &&
        !verifyConsistency(prev.size, c.size, consistency, prev.root, c.root)
      ) {
        throw new TrustError(
          TRUST_ERROR_CODES.inconsistent,
          `checkpoint ${c.size} is not consistent with accepted ${prev.size}`,
        );
      }
      if (c.size === prev.size) return this.current as WitnessedCheckpoint;
    }
    this.current = next;
    return next;
  }
}
