/**
 * Canonical JSON for signed metadata: object keys sorted by UTF-16 code units, no whitespace,
 * only strings, safe integers, booleans, null, arrays and objects (no floats: their text
 * forms are not unique). This is the subset where RFC 8785 (JCS) and OLPC canonical JSON, which
 * TUF uses, agree. Signed documents must arrive byte-identical to their canonical form, which
 * rejects duplicate keys, whitespace games and alternative number or string escapes.
 */
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';

/** A JSON value of the canonical subset. */
export type CanonicalValue =
  | string
  | number
  | boolean
  | null
  | readonly CanonicalValue[]
  | { readonly [k: string]: CanonicalValue };

/** Deepest nesting accepted (metadata is shallow; this bounds recursion). */
export const CANONICAL_DEPTH_MAX = 32;

/** Serialises `value` canonically. @throws {TrustError} TRUST_NON_CANONICAL for floats or unsupported values. */
export function canonicalize(value: unknown, depth = 0): string {
  if (depth > CANONICAL_DEPTH_MAX)
    throw new TrustError(
      TRUST_ERROR_CODES.nonCanonical,
      `JSON nested deeper than ${CANONICAL_DEPTH_MAX}`,
    );
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      throw new TrustError(TRUST_ERROR_CODES.nonCanonical, `number ${value} is not a safe integer`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalize(v, depth + 1)).join(',')}]`;
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize(o[k], depth + 1)}`).join(',')}}`;
  }
  throw new TrustError(
    TRUST_ERROR_CODES.nonCanonical,
    `unsupported JSON value of type ${typeof value}`,
  );
}

/**
 * Parses JSON that must already be in canonical form.
 * @throws {TrustError} TRUST_NON_CANONICAL.
 */
export function parseCanonical(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new TrustError(TRUST_ERROR_CODES.nonCanonical, `${what} is not UTF-8`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new TrustError(TRUST_ERROR_CODES.nonCanonical, `${what} is not JSON`, { cause });
  }
  if (canonicalize(value) !== text)
    throw new TrustError(TRUST_ERROR_CODES.nonCanonical, `${what} is not in canonical JSON form`);
  return value;
}

/** UTF-8 bytes of the canonical form. */
export function canonicalBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalize(value));
}
