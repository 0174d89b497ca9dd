/**
 * Typed errors of the DTN layer. Every expected failure has a stable `code`; malformed bundles
 * additionally carry the `rule` they break so callers (and `genesis dtn inspect`) can name it
 * without matching on message text.
 */
import { GenesisError } from '../core/index.ts';

/** Stable error codes of the DTN layer. */
export const DtnErrorCode = {
  /** A bundle, block or EID breaks a rule of RFC 9171 / RFC 8949; see `rule`. */
  BundleInvalid: 'DTN_BUNDLE_INVALID',
  /** A BPSec operation failed (bad block, unknown context, verification failure). */
  Security: 'DTN_SECURITY',
  /** A contact plan is malformed or a routing request is invalid. */
  ContactPlan: 'DTN_CONTACT_PLAN',
  /** A TCPCLv4 peer broke the protocol, or a session could not be used. */
  Tcpcl: 'DTN_TCPCL',
  /** The bundle agent refused an operation (full store, unknown endpoint, stopped). */
  Agent: 'DTN_AGENT',
  /** The persistent bundle store failed. */
  Store: 'DTN_STORE',
} as const;

/**
 * The validation rules a bundle can break, each named after the RFC requirement it enforces.
 * `strict-only` rules are the two cross-block presence rules that lenient decoding skips.
 */
export type BundleRule =
  | 'cbor-malformed'
  | 'cbor-non-deterministic'
  | 'cbor-trailing-bytes'
  | 'cbor-limit'
  | 'bundle-not-indefinite-array'
  | 'bundle-too-few-blocks'
  | 'bundle-too-large'
  | 'primary-version'
  | 'primary-length'
  | 'primary-fragment-fields'
  | 'crc-type-invalid'
  | 'crc-mismatch'
  | 'block-length'
  | 'block-number-duplicate'
  | 'block-number-reserved'
  | 'block-type-reserved'
  | 'block-duplicate-singleton'
  | 'block-data-malformed'
  | 'payload-missing'
  | 'payload-number'
  | 'payload-not-last'
  | 'payload-duplicate'
  | 'eid-scheme'
  | 'eid-dtn-ssp'
  | 'eid-ipn'
  | 'integer-range'
  | 'primary-crc-required'
  | 'zero-creation-time-without-bundle-age';

/** Base class of every DTN error. */
export class DtnError extends GenesisError {
  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'DtnError';
  }
}

/** A bundle (or block, or EID) that breaks `rule`; `offset` is the byte where it was found. */
export class BundleError extends DtnError {
  readonly rule: BundleRule;
  readonly offset: number;

  constructor(rule: BundleRule, message: string, offset = -1) {
    super(DtnErrorCode.BundleInvalid, `${rule}: ${message}`, { details: { rule, offset } });
    this.name = 'BundleError';
    this.rule = rule;
    this.offset = offset;
  }
}

/** True when `e` is a {@link BundleError}, optionally breaking the given rule. */
export function isBundleError(e: unknown, rule?: BundleRule): e is BundleError {
  return e instanceof BundleError && (rule === undefined || e.rule === rule);
}
