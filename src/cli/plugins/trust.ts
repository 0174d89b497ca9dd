/**
 * The trust layer in `genesis up`: every node gets an identity (Ed25519 at start, composite
 * ML-DSA-65 + Ed25519 lazily), each region runs a durable transparency log of identity
 * registrations, and the hubs of the region witness its checkpoints. Status: log size and the
 * last witnessed checkpoint (size / cosignatures).
 */
import { attachTrust, type TrustAttachment } from '../../trust/index.ts';
import type { FabricPlugin, FabricPluginFactory } from '../plugin.ts';

/** The trust plugin of `genesis up`. */
export const trustPlugin: FabricPluginFactory = (): FabricPlugin => {
  let t: TrustAttachment | undefined;
  return {
    name: 'trust',
    attach(fabric) {
      t = attachTrust(fabric);
    },
    status() {
      if (t === undefined) return {};
      let logSize = 0;
      let witnessed = 'none';
      for (const l of t.logs.values()) {
        logSize += l.durableLog?.size ?? 0;
        if (l.lastWitnessed !== undefined)
          witnessed = `${l.lastWitnessed.size}/${l.lastWitnessed.cosigners}cosig`;
      }
      return { logSize, witnessed, identities: t.identities.size };
    },
  };
};
