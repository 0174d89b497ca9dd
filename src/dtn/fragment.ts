/**
 * Fragmentation and reassembly (RFC 9171 §5.8, §5.9). A fragment's primary block carries the
 * original ADU's total length and this fragment's offset into it; the first fragment keeps
 * every extension block, later ones only those flagged "replicate in every fragment".
 */
import {
  BlockFlags,
  BlockType,
  type Bundle,
  BundleFlags,
  type CanonicalBlock,
  payloadBlock,
} from './bundle.ts';
import { DtnError, DtnErrorCode } from './errors.ts';
import { REASSEMBLY_FRAGMENTS_MAX } from './limits.ts';

/** Splits a bundle's payload into fragments of at most `maxPayloadBytes` each. */
export function fragmentBundle(bundle: Bundle, maxPayloadBytes: number): Bundle[] {
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1)
    throw new DtnError(DtnErrorCode.Agent, 'fragment size must be a positive integer');
  if ((bundle.primary.flags & BundleFlags.MustNotFragment) !== 0)
    throw new DtnError(DtnErrorCode.Agent, 'bundle must not be fragmented (RFC 9171 §4.2.3)');
  const payload = payloadBlock(bundle);
  const data = payload.data;
  if (data.length <= maxPayloadBytes) return [bundle];
  const baseOffset = bundle.primary.fragmentOffset ?? 0;
  const total = bundle.primary.totalAduLength ?? data.length;
  const others = bundle.blocks.slice(0, -1);
  const out: Bundle[] = [];
  for (let off = 0; off < data.length; off += maxPayloadBytes) {
    const piece = data.subarray(off, Math.min(data.length, off + maxPayloadBytes));
    const kept: CanonicalBlock[] =
      off === 0 ? others : others.filter((b) => (b.flags & BlockFlags.ReplicateInFragments) !== 0);
    out.push({
      primary: {
        ...bundle.primary,
        flags: bundle.primary.flags | BundleFlags.IsFragment,
        fragmentOffset: baseOffset + off,
        totalAduLength: total,
      },
      blocks: [...kept, { ...payload, data: piece }],
    });
  }
  return out;
}

/** Collects fragments of one ADU and rebuilds the original bundle when all bytes are present. */
export class Reassembly {
  private readonly pieces = new Map<number, Bundle>();
  private first: Bundle | undefined;

  constructor(readonly totalAduLength: number) {}

  /** Number of distinct fragments held. */
  get count(): number {
    return this.pieces.size;
  }

  /**
   * Adds a fragment; returns the whole bundle once the fragments cover the ADU.
   * @throws {DtnError} when more than REASSEMBLY_FRAGMENTS_MAX fragments arrive.
   */
  add(fragment: Bundle): Bundle | undefined {
    const off = fragment.primary.fragmentOffset ?? 0;
    if (!this.pieces.has(off) && this.pieces.size >= REASSEMBLY_FRAGMENTS_MAX)
      throw new DtnError(DtnErrorCode.Agent, 'too many fragments for one ADU');
    this.pieces.set(off, fragment);
    if (off === 0) this.first = fragment;
    return this.tryComplete();
  }

  private tryComplete(): Bundle | undefined {
    if (this.first === undefined) return undefined;
    const sorted = [...this.pieces.entries()].sort((a, b) => a[0] - b[0]);
    let covered = 0;
    for (const [off, b] of sorted) {
      if (off > covered) return undefined;
      covered = Math.max(covered, off + payloadBlock(b).data.length);
    }
    if (covered < this.totalAduLength) return undefined;
    const adu = new Uint8Array(this.totalAduLength);
    for (const [off, b] of sorted) {
      const d = payloadBlock(b).data;
      adu.set(d.subarray(0, Math.max(0, Math.min(d.length, this.totalAduLength - off))), off);
    }
    const { fragmentOffset: _o, totalAduLength: _t, ...primary } = this.first.primary;
    const blocks = this.first.blocks.slice(0, -1);
    return {
      primary: { ...primary, flags: primary.flags & ~BundleFlags.IsFragment },
      blocks: [
        ...blocks,
        {
          type: BlockType.Payload,
          number: 1,
          flags: payloadBlock(this.first).flags,
          crcType: payloadBlock(this.first).crcType,
          data: adu,
        },
      ],
    };
  }
}
