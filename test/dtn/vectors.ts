/** Loads the shared interoperability vectors (resolved relative to the repo, never absolute). */
import { readFileSync } from 'node:fs';

/** Reads a JSON file under ../shared/vectors. */
export function loadVector<T>(path: string): T {
  return JSON.parse(
    readFileSync(new URL(`../../../shared/vectors/${path}`, import.meta.url), 'utf8'),
  ) as T;
}

/** Path (URL) of a vector file. */
export function vectorUrl(path: string): URL {
  return new URL(`../../../shared/vectors/${path}`, import.meta.url);
}

/** Hex to bytes. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Bytes to hex. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** One item of bpv7/bundles.json. */
export interface BundleVector {
  readonly name: string;
  readonly kind: 'bundle' | 'primary-block' | 'canonical-block' | 'eid' | 'creation-timestamp';
  readonly hex: string;
  readonly expect: 'valid' | 'invalid';
  readonly expectLenient: 'valid' | 'invalid';
  readonly rfc9171RuleViolationsFound?: string[];
}
