/**
 * A log operator: the durable log, its checkpoint signers, and the collection of witness
 * cosignatures. `publishCheckpoint` signs the current tree head as a C2SP checkpoint, asks
 * every witness to cosign it (sending each the consistency proof from the size it last
 * cosigned), and stores the note with the cosignatures gathered.
 */
import type { Clock } from '../core/index.ts';
import { isTrustError, TRUST_ERROR_CODES, TrustError } from './errors.ts';
import type { DurableLog } from './log.ts';
import {
  addSignatures,
  formatCheckpoint,
  type NoteSignature,
  type NoteSigner,
  signNote,
} from './note.ts';
import type { LogProofSource } from './tuf-client.ts';
import type { AddCheckpointRequest, Witness } from './witness.ts';

/** Most witnesses a log asks per checkpoint. */
export const LOG_WITNESSES_MAX = 64;

/** A witness reachable by the log (in process, over the transport, over HTTP). */
export interface WitnessClient {
  readonly name: string;
  addCheckpoint(req: AddCheckpointRequest): Promise<NoteSignature>;
}

/** Wraps an in-process {@link Witness}. */
export function localWitness(w: Witness): WitnessClient {
  return { name: w.name, addCheckpoint: async (req) => w.addCheckpoint(req) };
}

/** Result of one checkpoint round. */
export interface CheckpointRound {
  readonly note: string;
  readonly size: number;
  readonly cosigners: readonly string[];
  readonly failures: readonly { readonly witness: string; readonly code: string }[];
}

/** The log operator. */
export class LogServer implements LogProofSource {
  /** What each witness last cosigned, as far as this log knows (starts at 0). */
  private readonly witnessSizes = new Map<string, number>();

  constructor(
    readonly log: DurableLog,
    private readonly signers: readonly NoteSigner[],
    private readonly witnesses: readonly WitnessClient[],
    readonly clock: Clock,
  ) {
    if (witnesses.length > LOG_WITNESSES_MAX)
      throw new TrustError(TRUST_ERROR_CODES.tooLarge, `more than ${LOG_WITNESSES_MAX} witnesses`);
  }

  /** The log origin. */
  get origin(): string {
    return this.log.origin;
  }

  /** Signs the current tree head (no cosignatures). */
  signedCheckpoint(): string {
    return signNote(
      formatCheckpoint({
        origin: this.log.origin,
        size: this.log.size,
        root: this.log.root,
        extensions: [],
      }),
      this.signers,
    );
  }

  private async cosign(w: WitnessClient, note: string): Promise<NoteSignature> {
    const size = this.log.size;
    const request = (oldSize: number): AddCheckpointRequest => ({
      oldSize,
      consistency: oldSize > 0 && oldSize < size ? this.log.consistencyProof(oldSize, size) : [],
      checkpoint: note,
    });
    try {
      return await w.addCheckpoint(request(this.witnessSizes.get(w.name) ?? 0));
    } catch (e) {
      // tlog-witness: a stale old size is answered with the witness's size; retry once with it.
      const known = isTrustError(e, TRUST_ERROR_CODES.inconsistent)
        ? e.details.knownSize
        : undefined;
      if (typeof known !== 'number' || known > size) throw e;
      return await w.addCheckpoint(request(known));
    }
  }

  /** Signs a checkpoint, gathers cosignatures, stores and returns the witnessed note. */
  async publishCheckpoint(): Promise<CheckpointRound> {
    const note = this.signedCheckpoint();
    const size = this.log.size;
    const results = await Promise.allSettled(this.witnesses.map((w) => this.cosign(w, note)));
    const sigs: NoteSignature[] = [];
    const failures: { witness: string; code: string }[] = [];
    results.forEach((r, i) => {
      const w = this.witnesses[i] as WitnessClient;
      if (r.status === 'fulfilled') {
        sigs.push(r.value);
        this.witnessSizes.set(w.name, size);
      } else {
        failures.push({ witness: w.name, code: isTrustError(r.reason) ? r.reason.code : 'ERROR' });
      }
    });
    const witnessed = addSignatures(note, sigs);
    if (size > 0) this.log.saveCheckpointNote(size, witnessed);
    return { note: witnessed, size, cosigners: sigs.map((s) => s.name), failures };
  }

  /** {@link LogProofSource}: the newest stored witnessed checkpoint. */
  async checkpoint(origin: string): Promise<string> {
    this.checkOrigin(origin);
    const c = this.log.latestCheckpointNote();
    if (c === undefined)
      throw new TrustError(
        TRUST_ERROR_CODES.notFound,
        `log ${origin} has no witnessed checkpoint yet`,
      );
    return c.note;
  }

  /** {@link LogProofSource}: an inclusion proof. */
  async inclusionProof(origin: string, index: number, size: number): Promise<Uint8Array[]> {
    this.checkOrigin(origin);
    return this.log.inclusionProof(index, size);
  }

  private checkOrigin(origin: string): void {
    if (origin !== this.log.origin)
      throw new TrustError(
        TRUST_ERROR_CODES.notFound,
        `this server runs ${this.log.origin}, not ${origin}`,
      );
  }
}
