/**
 * Endpoint IDs (RFC 9171 §4.2.5.1): the `dtn` scheme (including the null endpoint `dtn:none`)
 * and the `ipn` scheme, in their text and CBOR forms.
 */
import type { CborReader, CborWriter } from './cbor.ts';
import { BundleError } from './errors.ts';
import { EID_TEXT_BYTES_MAX } from './limits.ts';

/** URI scheme codes (RFC 9171 §9.7). */
export const EidScheme = { Dtn: 1, Ipn: 2 } as const;

/** An endpoint ID. `dtn:none` is `{ scheme: 'dtn', ssp: 'none' }`. */
export type Eid =
  | { readonly scheme: 'dtn'; readonly ssp: string }
  | { readonly scheme: 'ipn'; readonly node: number; readonly service: number };

/** The null endpoint, `dtn:none`, encoded `[1, 0]`. */
export const DTN_NONE: Eid = Object.freeze({ scheme: 'dtn', ssp: 'none' });

/** True for `dtn:none`. */
export function isNullEid(eid: Eid): boolean {
  return eid.scheme === 'dtn' && eid.ssp === 'none';
}

/** Builds an ipn EID. */
export function ipn(node: number, service: number): Eid {
  return { scheme: 'ipn', node, service };
}

/** Builds a dtn EID from its SSP (`//node/demux`). */
export function dtn(ssp: string): Eid {
  return { scheme: 'dtn', ssp };
}

/**
 * Checks a dtn SSP: RFC 9171 §4.2.5.1.1 gives `dtn-hier-part = "//" node-name name-delim
 * demux`, so the SSP starts with `//` and names a non-empty node.
 */
function dtnSspValid(ssp: string): boolean {
  if (ssp === 'none') return true;
  if (!ssp.startsWith('//')) return false;
  const slash = ssp.indexOf('/', 2);
  const nodeName = slash < 0 ? ssp.slice(2) : ssp.slice(2, slash);
  return nodeName.length > 0 && slash > 0;
}

/** Reads an EID from CBOR; throws {@link BundleError} naming the broken rule. */
export function readEid(r: CborReader): Eid {
  const at = r.pos;
  const n = r.arrayLength();
  if (n !== 2) throw new BundleError('eid-scheme', 'an EID is a 2-element array', at);
  const scheme = r.uint();
  if (scheme === EidScheme.Dtn) {
    if (r.peekMajor() === 0) {
      const v = r.uint();
      if (v !== 0)
        throw new BundleError('eid-dtn-ssp', 'a numeric dtn SSP must be 0 (dtn:none)', at);
      return DTN_NONE;
    }
    const ssp = r.text(EID_TEXT_BYTES_MAX);
    if (ssp === 'none' || !dtnSspValid(ssp)) {
      throw new BundleError(
        'eid-dtn-ssp',
        `dtn SSP "${ssp.slice(0, 64)}" must be //node-name/demux (RFC 9171 §4.2.5.1.1)`,
        at,
      );
    }
    return { scheme: 'dtn', ssp };
  }
  if (scheme === EidScheme.Ipn) {
    const m = r.arrayLength();
    if (m !== 2)
      throw new BundleError('eid-ipn', 'an ipn SSP is [node, service] (RFC 9171 §4.2.5.1.2)', at);
    const node = r.uint();
    const service = r.uint();
    return { scheme: 'ipn', node, service };
  }
  throw new BundleError('eid-scheme', `unknown URI scheme code ${scheme}`, at);
}

/** Writes an EID in CBOR. */
export function writeEid(w: CborWriter, eid: Eid): void {
  w.array(2);
  if (eid.scheme === 'ipn') {
    w.uint(EidScheme.Ipn);
    w.array(2);
    w.uint(eid.node);
    w.uint(eid.service);
  } else {
    w.uint(EidScheme.Dtn);
    if (eid.ssp === 'none') w.uint(0);
    else w.text(eid.ssp);
  }
}

/** Formats an EID as its URI (`dtn://n/x`, `dtn:none`, `ipn:2.1`). */
export function formatEid(eid: Eid): string {
  return eid.scheme === 'ipn' ? `ipn:${eid.node}.${eid.service}` : `dtn:${eid.ssp}`;
}

const IPN_RE = /^ipn:(\d{1,16})\.(\d{1,16})$/;

/**
 * Parses an EID URI.
 * @throws {BundleError} `eid-scheme`, `eid-ipn` or `eid-dtn-ssp` on bad text.
 */
export function parseEid(text: string): Eid {
  if (text.startsWith('ipn:')) {
    const m = IPN_RE.exec(text);
    const node = Number(m?.[1]);
    const service = Number(m?.[2]);
    if (m === null || !Number.isSafeInteger(node) || !Number.isSafeInteger(service)) {
      throw new BundleError('eid-ipn', `"${text}" is not ipn:NODE.SERVICE`);
    }
    return { scheme: 'ipn', node, service };
  }
  if (text.startsWith('dtn:')) {
    const ssp = text.slice(4);
    if (ssp === 'none') return DTN_NONE;
    if (!dtnSspValid(ssp) || Buffer.byteLength(ssp) > EID_TEXT_BYTES_MAX) {
      throw new BundleError('eid-dtn-ssp', `"${text}" is not dtn://node/demux or dtn:none`);
    }
    return { scheme: 'dtn', ssp };
  }
  throw new BundleError('eid-scheme', `"${text}" is neither a dtn: nor an ipn: EID`);
}

/** True when both EIDs are the same endpoint. */
export function eidEquals(a: Eid, b: Eid): boolean {
  if (a.scheme === 'ipn') return b.scheme === 'ipn' && a.node === b.node && a.service === b.service;
  return b.scheme === 'dtn' && a.ssp === b.ssp;
}

/**
 * The node an EID belongs to, as a string key: `ipn:N.0` for ipn, `dtn://node/` for dtn
 * (RFC 9171 §4.2.5.2: a node ID is the EID of the node's administrative endpoint).
 */
export function nodeIdOf(eid: Eid): string {
  if (eid.scheme === 'ipn') return `ipn:${eid.node}.0`;
  if (eid.ssp === 'none') return 'dtn:none';
  const slash = eid.ssp.indexOf('/', 2);
  return `dtn:${slash < 0 ? `${eid.ssp}/` : eid.ssp.slice(0, slash + 1)}`;
}
