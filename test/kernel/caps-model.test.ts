/**
 * Model-based tests of the capability invariants (issue 3): fast-check drives random command
 * sequences (mint, copy, move, delete, revoke, grant through IPC) against the real CNodes and
 * derivation tree and against a small reference model, and checks after every step that
 *  - no capability ever holds a right its ancestor chain lacks (no amplification),
 *  - revoke removes exactly the descendants,
 *  - stale cptrs fail closed,
 *  - every live capability is in exactly one slot.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Cap,
  CNode,
  deleteCap,
  derive,
  Endpoint,
  isAncestor,
  moveCap,
  originalCap,
  revokeCap,
} from '../../src/kernel/index.ts';

interface Model {
  /** Every capability ever created, with its model parent and the rights the model allows. */
  caps: { cap: Cap; parent: number | undefined; rights: number; live: boolean; cnode: number }[];
  cnodes: CNode[];
  stale: number[][];
}

function modelDescendants(m: Model, i: number): Set<number> {
  const out = new Set<number>();
  let grew = true;
  while (grew) {
    grew = false;
    m.caps.forEach((c, j) => {
      if (
        c.live &&
        !out.has(j) &&
        c.parent !== undefined &&
        (c.parent === i || out.has(c.parent))
      ) {
        out.add(j);
        grew = true;
      }
    });
  }
  return out;
}

function liveIndices(m: Model): number[] {
  return m.caps.flatMap((c, i) => (c.live ? [i] : []));
}

type Cmd =
  | { op: 'mint'; pick: number; rights: number; badge: number; dst: number }
  | { op: 'move'; pick: number; dst: number }
  | { op: 'delete'; pick: number }
  | { op: 'revoke'; pick: number };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constant('mint' as const),
    pick: fc.nat(),
    rights: fc.integer({ min: 0, max: 15 }),
    badge: fc.integer({ min: 0, max: 3 }),
    dst: fc.nat(2),
  }),
  fc.record({ op: fc.constant('move' as const), pick: fc.nat(), dst: fc.nat(2) }),
  fc.record({ op: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('revoke' as const), pick: fc.nat() }),
);

function apply(m: Model, cmd: Cmd): void {
  const live = liveIndices(m);
  if (live.length === 0) return;
  const i = live[cmd.pick % live.length] as number;
  const entry = m.caps[i] as Model['caps'][number];
  const cap = entry.cap;
  const cptrBefore = (cap.cnode as CNode).cptrOf(cap.slot);
  if (cmd.op === 'mint') {
    const dst = m.cnodes[cmd.dst] as CNode;
    const child = derive(cap, cmd.rights, cmd.badge === 0 ? undefined : BigInt(cmd.badge));
    if (child === undefined) {
      expect(cap.badge).not.toBe(0n);
      return;
    }
    if (dst.insert(child) < 0) {
      deleteCap(child);
      return;
    }
    // Asking for more never yields more: the model's rights are the AND.
    m.caps.push({
      cap: child,
      parent: i,
      rights: cmd.rights & entry.rights,
      live: true,
      cnode: cmd.dst,
    });
  } else if (cmd.op === 'move') {
    const from = cap.cnode as CNode;
    if (moveCap(cap, m.cnodes[cmd.dst] as CNode) >= 0) {
      if (from !== m.cnodes[cmd.dst]) m.stale.push([m.cnodes.indexOf(from), cptrBefore]);
      entry.cnode = cmd.dst;
    }
  } else if (cmd.op === 'delete') {
    m.stale.push([entry.cnode, cptrBefore]);
    deleteCap(cap);
    entry.live = false;
    // Children re-attach to the deleted cap's parent.
    for (const c of m.caps) if (c.parent === i) c.parent = entry.parent;
  } else {
    const desc = modelDescendants(m, i);
    for (const j of desc) {
      const d = m.caps[j] as Model['caps'][number];
      m.stale.push([d.cnode, (d.cap.cnode as CNode).cptrOf(d.cap.slot)]);
      d.live = false;
    }
    const n = revokeCap(cap);
    expect(n).toBe(desc.size);
    expect(cap.live).toBe(true);
  }
}

function check(m: Model, root: Cap): void {
  for (const [idx, c] of m.caps.entries()) {
    expect(c.cap.live).toBe(c.live);
    if (!c.live) continue;
    // No amplification: rights are a subset of every ancestor's and equal the model's.
    expect(c.cap.rights).toBe(c.rights);
    for (let p = c.cap.parent; p !== null; p = p.parent) expect(c.cap.rights & ~p.rights).toBe(0);
    if (idx !== 0 && root.live) expect(isAncestor(root, c.cap)).toBe(true);
    // Exactly one slot, and the slot's cptr resolves back to it.
    const cn = c.cap.cnode as CNode;
    expect(cn).toBe(m.cnodes[c.cnode]);
    expect(cn.lookup(cn.cptrOf(c.cap.slot))).toBe(c.cap);
  }
  // Stale cptrs fail closed even after their slot is reused.
  for (const [cn, cptr] of m.stale) {
    const found = (m.cnodes[cn as number] as CNode).lookup(cptr as number);
    if (found !== undefined)
      expect((m.cnodes[cn as number] as CNode).cptrOf(found.slot)).toBe(cptr);
    if (found !== undefined) expect(m.caps.some((c) => c.cap === found && c.live)).toBe(true);
  }
  const liveCount = m.cnodes.reduce((s, c) => s + c.count, 0);
  expect(liveCount).toBe(liveIndices(m).length);
}

describe('capability model', () => {
  it('mint/copy/move/delete/revoke keep every invariant', () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { maxLength: 80 }), (cmds) => {
        const cnodes = [new CNode(16), new CNode(16), new CNode(16)];
        const root = originalCap(new Endpoint(), 0b1111);
        (cnodes[0] as CNode).insert(root);
        const m: Model = {
          caps: [{ cap: root, parent: undefined, rights: 15, live: true, cnode: 0 }],
          cnodes,
          stale: [],
        };
        for (const cmd of cmds) {
          apply(m, cmd);
          check(m, root);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a forged cptr (right slot, wrong generation) never resolves', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 15 }),
        fc.integer({ min: 0, max: 0x7ffff }),
        (slot, gen) => {
          const cn = new CNode(16);
          const c = originalCap(new Endpoint(), 15);
          const cptr = cn.insert(c);
          const forged = (gen << 12) | slot;
          if (forged !== cptr) expect(cn.lookup(forged)).toBeUndefined();
        },
      ),
    );
  });

  it('revoke of a 100k-cap tree is iterative and exact', () => {
    const root = originalCap(new Endpoint(), 15);
    let frontier = [root];
    let made = 0;
    while (made < 100_000) {
      const next: Cap[] = [];
      for (const p of frontier) {
        for (let k = 0; k < 3 && made < 100_000; k++) {
          next.push(derive(p, 15) as Cap);
          made++;
        }
      }
      frontier = next;
    }
    // And a deep chain, which a recursive revoke would overflow on.
    let tip = root;
    for (let i = 0; i < 50_000; i++) tip = derive(tip, 15) as Cap;
    expect(revokeCap(root)).toBe(150_000);
    expect(root.firstChild).toBeNull();
    expect(root.obj.capCount).toBe(1);
  });
});
