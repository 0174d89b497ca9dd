/**
 * The gate every client update passes before aggregation: wrong length, NaN/Inf, oversized
 * messages, duplicate client ids within a round, and replays (a (client, round, nonce) already
 * seen, or a message naming another round) are rejected with a typed {@link LearnError},
 * logged and counted by code. Accepted updates are safe to aggregate.
 */
import type { Logger } from '../core/index.ts';
import { LearnError, LearnErrorCode, type LearnErrorCodeValue } from './errors.ts';
import type { ClientUpdate } from './strategy/strategy.ts';

/** Largest encoded update accepted, in bytes (a 4 Mi-parameter model plus header). */
export const LEARN_UPDATE_BYTES_MAX = 16 * 1024 * 1024 + 4096;
/** Replay nonces remembered per guard (oldest rounds are forgotten first). */
export const REPLAY_NONCES_MAX = 1_000_000;
/** Largest example count a client may claim (bounds its weight in the mean). */
export const CLIENT_EXAMPLES_MAX = 10_000_000;

/** An update as received, with the envelope fields the guard checks. */
export interface ReceivedUpdate extends ClientUpdate {
  readonly round: number;
  /** A per-message nonce chosen by the client (unique per client and round). */
  readonly nonce: string;
  /** Encoded size, when it came over the wire. */
  readonly bytes?: number;
}

/** Counters of rejected updates by error code. */
export type RejectionCounts = Partial<Record<LearnErrorCodeValue, number>>;

/** Checks updates for one model size; keeps replay state across rounds. */
export class UpdateGuard {
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];
  private roundClients = new Set<string>();
  private currentRound = -1;
  readonly rejected: RejectionCounts = {};
  accepted = 0;

  constructor(
    private readonly paramCount: number,
    private readonly logger?: Logger,
  ) {}

  /** Starts a round: duplicate detection is per round. */
  beginRound(round: number): void {
    this.currentRound = round;
    this.roundClients = new Set();
  }

  /**
   * Checks one update.
   * @throws {LearnError} `LEARN_WRONG_LENGTH`, `LEARN_NON_FINITE`, `LEARN_OVERSIZED`,
   * `LEARN_DUPLICATE_CLIENT`, `LEARN_REPLAY`, `LEARN_MALFORMED`.
   */
  check(u: ReceivedUpdate): void {
    const fail = (
      code: LearnErrorCodeValue,
      message: string,
      details: Record<string, unknown> = {},
    ): never => {
      throw new LearnError(code, message, {
        details: { clientId: u.clientId, round: u.round, ...details },
      });
    };
    if (u.bytes !== undefined && u.bytes > LEARN_UPDATE_BYTES_MAX)
      fail(LearnErrorCode.Oversized, `update of ${u.bytes} bytes exceeds LEARN_UPDATE_BYTES_MAX`, {
        bytes: u.bytes,
      });
    if (u.round !== this.currentRound)
      fail(LearnErrorCode.Replay, `update for round ${u.round} during round ${this.currentRound}`);
    const key = `${u.clientId}\u0000${u.round}\u0000${u.nonce}`;
    if (this.seen.has(key)) fail(LearnErrorCode.Replay, `replayed update from ${u.clientId}`);
    if (this.roundClients.has(u.clientId))
      fail(LearnErrorCode.DuplicateClient, `second update from ${u.clientId} in round ${u.round}`);
    if (u.params.length !== this.paramCount)
      fail(
        LearnErrorCode.WrongLength,
        `update has ${u.params.length} values, model has ${this.paramCount}`,
        { length: u.params.length },
      );
    if (
      !(
        Number.isInteger(u.numExamples) &&
        u.numExamples >= 0 &&
        u.numExamples <= CLIENT_EXAMPLES_MAX
      )
    ) {
      fail(
        LearnErrorCode.Malformed,
        `numExamples ${u.numExamples} outside [0, ${CLIENT_EXAMPLES_MAX}]`,
      );
    }
    const p = u.params;
    for (let i = 0; i < p.length; i++) {
      if (!Number.isFinite(p[i] as number))
        fail(LearnErrorCode.NonFinite, `update value ${i} is ${p[i]}`, { index: i });
    }
    this.remember(key);
    this.roundClients.add(u.clientId);
  }

  /** Checks every update, returning the accepted ones; rejections are logged and counted. */
  filter(updates: Iterable<ReceivedUpdate>): ReceivedUpdate[] {
    const ok: ReceivedUpdate[] = [];
    for (const u of updates) {
      try {
        this.check(u);
        ok.push(u);
        this.accepted++;
      } catch (e) {
        if (!(e instanceof LearnError)) throw e;
        this.count(e);
      }
    }
    return ok;
  }

  /** Counts and logs an error raised elsewhere for an update (e.g. a decode failure). */
  count(e: LearnError): void {
    this.rejected[e.code] = (this.rejected[e.code] ?? 0) + 1;
    this.logger?.warn({ code: e.code, ...e.details }, `learn: update rejected: ${e.message}`);
  }

  /** Total rejections. */
  get rejectedTotal(): number {
    let n = 0;
    for (const v of Object.values(this.rejected)) n += v ?? 0;
    return n;
  }

  private remember(key: string): void {
    this.seen.add(key);
    this.seenOrder.push(key);
    if (this.seenOrder.length > REPLAY_NONCES_MAX) {
      const old = this.seenOrder.splice(0, this.seenOrder.length - REPLAY_NONCES_MAX);
      for (const k of old) this.seen.delete(k);
    }
  }
}
