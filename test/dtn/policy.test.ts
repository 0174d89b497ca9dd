/**
 * BPSec policy in the agent (RFC 9172 §5 roles, §8.1 reason codes): the source signs and
 * encrypts, the acceptor decrypts, verifies and strips, and refuses — with the right reason in
 * a deletion report — bundles that lack required protection, were tampered with on the way, or
 * come from a node it shares no key with. Relays forward protected bundles untouched.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRng, VirtualClock } from '../../src/core/index.ts';
import {
  BlockType,
  BpsecPolicy,
  type BpsecPolicyInit,
  BundleAgent,
  BundleFlags,
  createBundle,
  decodeBundle,
  encodeBundle,
  findBlock,
  ipn,
  payloadBlock,
  SecurityReasonCode,
  StaticRouter,
  type StatusReport,
} from '../../src/dtn/index.ts';

const T0 = 1_800_000_000_000;
const KEYS: Record<string, Uint8Array> = {
  'ipn:1.0|integrity': new Uint8Array(32).fill(1),
  'ipn:1.0|confidentiality': new Uint8Array(32).fill(2),
};
const keyOf: BpsecPolicyInit['key'] = (peer, service) => {
  // Pairwise symmetric keys: node 1 ↔ node 3 share the same key both ways.
  const other = peer === 'ipn:3.0' ? 'ipn:1.0' : peer;
  return KEYS[`${other}|${service}`];
};

function policy(over: Partial<BpsecPolicyInit> = {}): BpsecPolicy {
  return new BpsecPolicy({ key: keyOf, rng: new SeededRng(7), ...over });
}

/** 1 → 2 → 3 over direct in-memory links; node 2 is a relay without keys. */
function chain(src: BpsecPolicy | undefined, dst: BpsecPolicy | undefined, tamper = false) {
  const clock = new VirtualClock(T0);
  const route = new StaticRouter(new Map([['ipn:3.0', 'ipn:2.0']]), 'ipn:2.0');
  const agents = [
    new BundleAgent({ nodeId: ipn(1, 0), clock, router: route, ...(src ? { security: src } : {}) }),
    new BundleAgent({
      nodeId: ipn(2, 0),
      clock,
      router: new StaticRouter(new Map([['ipn:3.0', 'ipn:3.0']]), 'ipn:1.0'),
    }),
    new BundleAgent({
      nodeId: ipn(3, 0),
      clock,
      router: new StaticRouter(new Map(), 'ipn:2.0'),
      ...(dst ? { security: dst } : {}),
    }),
  ];
  const wire: Uint8Array[] = [];
  const link = (from: number, to: number, mangle: boolean) =>
    (agents[from] as BundleAgent).addLink({
      peer: `ipn:${to + 1}.0`,
      isUp: () => true,
      send: async (bytes) => {
        const b = Uint8Array.from(bytes);
        wire.push(b);
        if (mangle) {
          // Flip one bit of the payload block's data (the last bytes before the CRC-less end).
          const bundle = decodeBundle(b);
          const p = payloadBlock(bundle).data;
          p[0] = (p[0] as number) ^ 0x80;
          (agents[to] as BundleAgent).receive(encodeBundle(bundle));
          return;
        }
        (agents[to] as BundleAgent).receive(b);
      },
    });
  link(0, 1, false);
  link(1, 2, tamper);
  link(1, 0, false);
  link(2, 1, false);
  for (const a of agents) a.start();
  const got: Uint8Array[] = [];
  const reports: StatusReport[] = [];
  agents[2]?.register(ipn(3, 1), (d) => {
    got.push(d.payload);
  });
  agents[0]?.onStatusReport((r) => reports.push(r));
  return { clock, agents, got, reports, wire };
}

const send = (a: BundleAgent, payload: Uint8Array) =>
  a.send({
    destination: ipn(3, 1),
    payload,
    lifetimeMs: 3_600_000,
    flags: BundleFlags.ReportDeletion,
  });

describe('BPSec policy in the agent', () => {
  it('sign+encrypt at the source, decrypt+verify+strip at the destination; the relay sees ciphertext', async () => {
    const c = chain(
      policy({ protect: () => ({ integrity: true, confidentiality: true }) }),
      policy({ require: { integrity: true, confidentiality: true } }),
    );
    const msg = new TextEncoder().encode('pump 7 bearing temperature 81 C');
    send(c.agents[0] as BundleAgent, msg);
    await c.clock.advance(5_000);
    expect(c.got).toHaveLength(1);
    expect(new TextDecoder().decode(c.got[0])).toBe('pump 7 bearing temperature 81 C');
    expect(c.agents[2]?.stats.securityFailed).toBe(0);
    // On every hop the payload travelled encrypted, with its BCB.
    expect(c.wire.length).toBeGreaterThanOrEqual(2);
    for (const bytes of c.wire) {
      const b = decodeBundle(bytes);
      expect(findBlock(b, BlockType.Confidentiality)).toBeDefined();
      expect(new TextDecoder().decode(payloadBlock(b).data)).not.toContain('bearing');
    }
  });

  it('protect() encrypts the payload and the BIB together (RFC 9172 §3.9)', () => {
    const p = policy({ protect: () => ({ integrity: true, confidentiality: true }) });
    const b = createBundle({
      source: ipn(1, 0),
      destination: ipn(3, 1),
      reportTo: ipn(1, 0),
      payload: new TextEncoder().encode('secret'),
      creationTime: 1,
      sequence: 0,
      lifetimeMs: 1000,
    });
    const out = p.protect(b);
    expect(new TextDecoder().decode(payloadBlock(out).data)).not.toContain('secret');
    const bcb = findBlock(out, BlockType.Confidentiality);
    const bib = findBlock(out, BlockType.Integrity);
    expect(bcb).toBeDefined();
    expect(bib).toBeDefined();
    const back = policy({ require: { integrity: true, confidentiality: true } }).accept(
      decodeBundle(encodeBundle(out)),
    );
    expect(back.ok).toBe(true);
    if (back.ok) {
      expect(new TextDecoder().decode(payloadBlock(back.bundle).data)).toBe('secret');
      expect(
        back.bundle.blocks.some(
          (x) => x.type === BlockType.Integrity || x.type === BlockType.Confidentiality,
        ),
      ).toBe(false);
      expect([...back.verified].sort()).toEqual(['confidentiality', 'integrity']);
    }
  });

  it('a payload altered on the way is deleted with "failed security operation" and reported', async () => {
    const c = chain(
      policy({ protect: () => ({ integrity: true }) }),
      policy({ require: { integrity: true } }),
      true,
    );
    send(c.agents[0] as BundleAgent, new Uint8Array([1, 2, 3, 4]));
    await c.clock.advance(5_000);
    expect(c.got).toHaveLength(0);
    expect(c.agents[2]?.stats.securityFailed).toBe(1);
    expect(c.reports.map((r) => [r.kind, r.reason])).toContainEqual([
      'deleted',
      SecurityReasonCode.FailedSecurityOperation,
    ]);
  });

  it('an unprotected bundle where protection is required is deleted with "missing security operation"', async () => {
    const c = chain(undefined, policy({ require: { integrity: true } }));
    send(c.agents[0] as BundleAgent, new Uint8Array([9]));
    await c.clock.advance(5_000);
    expect(c.got).toHaveLength(0);
    expect(c.reports.map((r) => r.reason)).toContain(SecurityReasonCode.MissingSecurityOperation);
  });

  it('a BIB from a node the acceptor shares no key with fails closed', async () => {
    const c = chain(
      policy({ protect: () => ({ integrity: true }) }),
      policy({ key: () => undefined }),
    );
    send(c.agents[0] as BundleAgent, new Uint8Array([5]));
    await c.clock.advance(5_000);
    expect(c.got).toHaveLength(0);
    expect(c.agents[2]?.stats.securityFailed).toBe(1);
  });

  it('without a requirement, unprotected bundles are delivered as before', async () => {
    const c = chain(undefined, policy());
    send(c.agents[0] as BundleAgent, new Uint8Array([5]));
    await c.clock.advance(5_000);
    expect(c.got).toHaveLength(1);
  });

  it('accept() never throws on hostile security blocks', () => {
    const p = policy({ require: { integrity: true } });
    const base = createBundle({
      source: ipn(1, 0),
      destination: ipn(3, 1),
      reportTo: ipn(1, 0),
      payload: new Uint8Array([1]),
      creationTime: 1,
      sequence: 0,
      lifetimeMs: 1000,
    });
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.constantFrom(BlockType.Integrity, BlockType.Confidentiality),
        (data, type) => {
          const b = {
            primary: base.primary,
            blocks: [{ type, number: 2, flags: 0, crcType: 0, data }, ...base.blocks],
          };
          const r = p.accept(b as typeof base);
          expect(r.ok).toBe(false);
        },
      ),
    );
  });
});
