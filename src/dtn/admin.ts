/**
 * Administrative records (RFC 9171 §6.1): bundle status reports, carried as the payload of a
 * bundle whose "payload is an administrative record" flag is set.
 */
import { CborReader, CborWriter } from './cbor.ts';
import { type Eid, readEid, writeEid } from './eid.ts';
import { BundleError } from './errors.ts';

/** Status report reason codes (RFC 9171 §6.1.1). */
export const ReasonCode = {
  NoInformation: 0,
  LifetimeExpired: 1,
  ForwardedOverUnidirectionalLink: 2,
  TransmissionCanceled: 3,
  DepletedStorage: 4,
  DestinationUnintelligible: 5,
  NoKnownRoute: 6,
  NoTimelyContact: 7,
  BlockUnintelligible: 8,
  HopLimitExceeded: 9,
  TrafficPared: 10,
  BlockUnsupported: 11,
} as const;

/** Which status a report asserts. */
export type StatusKind = 'received' | 'forwarded' | 'delivered' | 'deleted';

/** A bundle status report. */
export interface StatusReport {
  readonly kind: StatusKind;
  /** DTN time of the event, when the bundle asked for it (0 otherwise). */
  readonly timeMs: number;
  readonly reason: number;
  readonly source: Eid;
  readonly creationTime: number;
  readonly sequence: number;
  readonly fragmentOffset?: number;
  readonly fragmentLength?: number;
}

const KINDS: readonly StatusKind[] = ['received', 'forwarded', 'delivered', 'deleted'];
const ADMIN_STATUS_REPORT = 1;

/** Encodes a status report as an administrative record `[1, report]`. */
export function encodeStatusReport(r: StatusReport): Uint8Array {
  const w = new CborWriter(96);
  w.array(2);
  w.uint(ADMIN_STATUS_REPORT);
  const frag = r.fragmentOffset !== undefined && r.fragmentLength !== undefined;
  w.array(frag ? 6 : 4);
  w.array(4);
  for (const k of KINDS) {
    if (k !== r.kind) {
      w.array(1);
      w.byte(0xf4);
    } else if (r.timeMs > 0) {
      w.array(2);
      w.byte(0xf5);
      w.uint(r.timeMs);
    } else {
      w.array(1);
      w.byte(0xf5);
    }
  }
  w.uint(r.reason);
  writeEid(w, r.source);
  w.array(2);
  w.uint(r.creationTime);
  w.uint(r.sequence);
  if (frag) {
    w.uint(r.fragmentOffset ?? 0);
    w.uint(r.fragmentLength ?? 0);
  }
  return w.finish();
}

function readBool(r: CborReader): boolean {
  const b = r.buf[r.pos];
  if (b !== 0xf4 && b !== 0xf5) r.fail('expected a boolean');
  r.pos++;
  return b === 0xf5;
}

/** Decodes a status report administrative record. @throws {BundleError} */
export function decodeStatusReport(payload: Uint8Array): StatusReport {
  const r = new CborReader(payload, false);
  if (r.arrayLength() !== 2 || r.uint() !== ADMIN_STATUS_REPORT)
    throw new BundleError('block-data-malformed', 'not a status report record', 0);
  const n = r.arrayLength();
  if (n !== 4 && n !== 6)
    throw new BundleError('block-data-malformed', 'status report has 4 or 6 items', r.pos);
  if (r.arrayLength() !== 4)
    throw new BundleError('block-data-malformed', 'status information has 4 assertions', r.pos);
  let kind: StatusKind | undefined;
  let timeMs = 0;
  for (const k of KINDS) {
    const m = r.arrayLength();
    const asserted = readBool(r);
    if (m === 2) timeMs = r.uint();
    if (asserted && kind === undefined) kind = k;
  }
  if (kind === undefined)
    throw new BundleError('block-data-malformed', 'status report asserts nothing', r.pos);
  const reason = r.uint();
  const source = readEid(r);
  r.arrayLength();
  const creationTime = r.uint();
  const sequence = r.uint();
  const base = { kind, timeMs, reason, source, creationTime, sequence };
  if (n === 6) return { ...base, fragmentOffset: r.uint(), fragmentLength: r.uint() };
  return base;
}
