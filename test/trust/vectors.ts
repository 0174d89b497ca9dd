/** Loads the shared interoperability vectors relative to the repository root (never absolute). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of `../shared/vectors/<rel>` beside the repository. */
export function vectorPath(rel: string): string {
  return fileURLToPath(new URL(`../../../shared/vectors/${rel}`, import.meta.url));
}

/** Parses a vector JSON file. */
export function readVector<T>(rel: string): T {
  return JSON.parse(readFileSync(vectorPath(rel), 'utf8')) as T;
}

/** Every `.json` file under `rel`, recursively, as paths relative to the vectors root. */
export function listJson(rel: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(vectorPath(dir)).sort()) {
      const p = join(dir, name);
      if (statSync(vectorPath(p)).isDirectory()) walk(p);
      else if (name.endsWith('.json')) out.push(p);
    }
  };
  walk(rel);
  return out;
}

/** Bytes of a standard base64 string (vectors use Node-compatible base64). */
export function b64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Bytes of a hex string. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}
