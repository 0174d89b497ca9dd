/**
 * A BPSec policy for the bundle agent (RFC 9172 §5 security roles, §8.1 reason codes) over the
 * RFC 9173 default contexts: as **security source** it adds a BIB-HMAC-SHA2 over the payload
 * and/or encrypts the payload with BCB-AES-GCM on bundles this node originates; as **security
 * acceptor** it decrypts and verifies what reaches this node as destination, removes the
 * security blocks it processed, and refuses — deletes, with the RFC 9172 reason code in the
 * status report — bundles whose required protection is missing or fails.
 *
 * Keys are pairwise and symmetric (both RFC 9173 contexts are), looked up by peer node ID: the
 * destination's when protecting, the security source's when accepting. IVs come from the
 * injected Rng so that an AES-GCM IV never repeats under a key (RFC 9173 §4.3.1).
 */
import type { Rng } from '../core/index.ts';
import {
  addBcb,
  addBib,
  decodeAsb,
  decryptBcb,
  SecurityContext,
  SecurityError,
  verifyBib,
} from './bpsec.ts';
import { BlockType, type Bundle, BundleFlags, nextBlockNumber } from './bundle.ts';
import { nodeIdOf } from './eid.ts';

/** RFC 9172 §8.1: status report reason codes for security failures. */
export const SecurityReasonCode = {
  MissingSecurityOperation: 12,
  UnknownSecurityOperation: 13,
  UnexpectedSecurityOperation: 14,
  FailedSecurityOperation: 15,
  ConflictingSecurityOperation: 16,
} as const;

/** The two security services of RFC 9172. */
export type SecurityService = 'integrity' | 'confidentiality';

/** What a policy applies to bundles for one destination (or requires of accepted ones). */
export interface SecurityServices {
  readonly integrity?: boolean;
  readonly confidentiality?: boolean;
}

/** Options of a {@link BpsecPolicy}. */
export interface BpsecPolicyInit {
  /** Services to apply, as security source, to bundles this node sends to `destNode`. */
  readonly protect?: (destNode: string) => SecurityServices | undefined;
  /** Services every bundle delivered here must carry (security acceptor). */
  readonly require?: SecurityServices;
  /** The key shared with `peerNode` for `service`; undefined when there is none. */
  readonly key: (peerNode: string, service: SecurityService) => Uint8Array | undefined;
  /** Source of AES-GCM IVs (12 bytes each). */
  readonly rng: Rng;
}

/** Outcome of the acceptor role on one bundle. */
export type AcceptResult =
  | { readonly ok: true; readonly bundle: Bundle; readonly verified: readonly SecurityService[] }
  | { readonly ok: false; readonly reason: number; readonly message: string };

/** A node's BPSec policy (see the module comment). */
export class BpsecPolicy {
  constructor(private readonly init: BpsecPolicyInit) {}

  /**
   * Security source role: signs, then encrypts, the payload of an originated bundle as the policy
   * says for its destination. When both apply the BCB also covers the BIB (RFC 9172 §3.9: a BIB
   * sharing a target with a BCB must be encrypted with it, or it would leak a plaintext MAC).
   * @throws {SecurityError} `key` when the policy asks for a service it has no key for.
   */
  protect(bundle: Bundle): Bundle {
    if ((bundle.primary.flags & BundleFlags.AdminRecord) !== 0) return bundle;
    const dest = nodeIdOf(bundle.primary.destination);
    const want = this.init.protect?.(dest);
    if (want === undefined) return bundle;
    const source = bundle.primary.source;
    let out = bundle;
    let bibNumber: number | undefined;
    if (want.integrity === true) {
      bibNumber = nextBlockNumber(out);
      out = addBib(out, {
        targets: [1],
        source,
        key: this.keyFor(dest, 'integrity'),
        blockNumber: bibNumber,
      });
    }
    if (want.confidentiality === true) {
      const iv = new Uint8Array(12);
      this.init.rng.fill(iv);
      out = addBcb(out, {
        targets: bibNumber === undefined ? [1] : [1, bibNumber],
        source,
        key: this.keyFor(dest, 'confidentiality'),
        iv,
        blockNumber: nextBlockNumber(out),
      });
    }
    return out;
  }

  /**
   * Security acceptor role for a bundle whose destination is this node: decrypts BCBs, verifies
   * BIBs (both keyed by their security source), removes them, and checks that what the policy
   * requires was there. Never throws: failures come back with their RFC 9172 reason code.
   */
  accept(bundle: Bundle): AcceptResult {
    if ((bundle.primary.flags & BundleFlags.AdminRecord) !== 0)
      return { ok: true, bundle, verified: [] };
    const verified = new Set<SecurityService>();
    let out = bundle;
    try {
      // Confidentiality first: a BIB covered by a BCB is only readable once decrypted.
      for (const b of bundle.blocks.filter((x) => x.type === BlockType.Confidentiality)) {
        const asb = decodeAsb(b.data);
        if (asb.contextId !== SecurityContext.BcbAesGcm)
          return fail(SecurityReasonCode.UnknownSecurityOperation, `BCB context ${asb.contextId}`);
        const key = this.init.key(nodeIdOf(asb.source), 'confidentiality');
        if (key === undefined)
          return fail(
            SecurityReasonCode.FailedSecurityOperation,
            `no confidentiality key for ${nodeIdOf(asb.source)}`,
          );
        out = decryptBcb(out, b.number, key);
        if (asb.targets.includes(1)) verified.add('confidentiality');
      }
      for (const b of out.blocks.filter((x) => x.type === BlockType.Integrity)) {
        const asb = decodeAsb(b.data);
        if (asb.contextId !== SecurityContext.BibHmacSha2)
          return fail(SecurityReasonCode.UnknownSecurityOperation, `BIB context ${asb.contextId}`);
        const key = this.init.key(nodeIdOf(asb.source), 'integrity');
        if (key === undefined)
          return fail(
            SecurityReasonCode.FailedSecurityOperation,
            `no integrity key for ${nodeIdOf(asb.source)}`,
          );
        verifyBib(out, b.number, key);
        if (asb.targets.includes(1)) verified.add('integrity');
        out = { primary: out.primary, blocks: out.blocks.filter((x) => x.number !== b.number) };
      }
    } catch (e) {
      // Hostile or corrupt security blocks end here, whatever the decoder threw.
      return fail(
        e instanceof SecurityError && e.reason === 'unsupported'
          ? SecurityReasonCode.UnknownSecurityOperation
          : SecurityReasonCode.FailedSecurityOperation,
        String((e as Error).message),
      );
    }
    const req = this.init.require ?? {};
    for (const s of ['integrity', 'confidentiality'] as const) {
      if (req[s] === true && !verified.has(s))
        return fail(
          SecurityReasonCode.MissingSecurityOperation,
          `policy requires payload ${s}, the bundle has none`,
        );
    }
    return { ok: true, bundle: out, verified: [...verified] };
  }

  private keyFor(peer: string, service: SecurityService): Uint8Array {
    const k = this.init.key(peer, service);
    if (k === undefined) throw new SecurityError('key', `no ${service} key for ${peer}`);
    return k;
  }
}

function fail(reason: number, message: string): AcceptResult {
  return { ok: false, reason, message };
}
