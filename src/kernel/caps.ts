/**
 * Capabilities, CNodes and the capability derivation tree (seL4 Reference Manual §3, adapted).
 *
 * A {@link Cap} names one kernel object with a set of rights and an optional badge. Every cap
 * except an object's original cap has a parent in the derivation tree; `revoke` deletes exactly
 * the descendants of a cap, `delete` removes one cap and re-attaches its children to its parent
 * (so a later revoke of an ancestor still reaches them). Rights only shrink along the tree:
 * derivation masks the requested rights with the parent's, so asking for more never yields more.
 *
 * A capability pointer (cptr) handed to a domain is `generation << CPTR_SLOT_BITS | slot`.
 * A slot's generation is bumped whenever it is emptied, so a stale or forged cptr (wrong
 * generation) fails closed even if the slot has been reused.
 */
import type { ObjTypeValue } from './abi.ts';
import { KernelError, KernelErrorCode, kassert } from './errors.ts';
import {
  CNODE_SLOTS_INITIAL,
  CNODE_SLOTS_MAX,
  CPTR_GENERATION_MAX,
  CPTR_SLOT_BITS,
} from './limits.ts';

const SLOT_MASK = (1 << CPTR_SLOT_BITS) - 1;

/** Base of every kernel object. Objects live while at least one capability names them. */
export abstract class KObject {
  abstract readonly type: ObjTypeValue;
  /** Number of live capabilities naming this object. */
  capCount = 0;
  /** Set when the last capability was deleted; a dead object refuses every operation. */
  dead = false;

  /** Called once when the last capability is deleted. */
  protected onDestroy(): void {}

  /** @internal Called by the CDT when a capability to this object is deleted. */
  release(): void {
    kassert(this.capCount > 0, 'capCount underflow');
    if (--this.capCount === 0) {
      this.dead = true;
      this.onDestroy();
    }
  }
}

/** A capability: an object, rights, a badge, a place in a CNode and in the derivation tree. */
export class Cap {
  parent: Cap | null = null;
  firstChild: Cap | null = null;
  nextSibling: Cap | null = null;
  prevSibling: Cap | null = null;
  cnode: CNode | null = null;
  slot = -1;
  live = true;

  constructor(
    readonly obj: KObject,
    readonly rights: number,
    readonly badge: bigint,
  ) {
    obj.capCount++;
  }

  /** True when this cap holds every bit of `rights`. */
  has(rights: number): boolean {
    return (this.rights & rights) === rights;
  }
}

/**
 * A bounded table of capability slots with per-slot generation counters. The backing arrays
 * start small and double up to `size` on demand: most domains hold a handful of caps, and a
 * spawn should not pay for 256 empty slots (slots past the current capacity are empty, with
 * generation 1, exactly as if they had been allocated).
 */
export class CNode {
  slots: (Cap | undefined)[];
  generations: Uint32Array;
  private used = 0;
  private hint = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1 || size > CNODE_SLOTS_MAX) {
      throw new KernelError(
        KernelErrorCode.BAD_ARGUMENT,
        `CNode size must be in [1, ${CNODE_SLOTS_MAX}]`,
        {
          details: { size },
        },
      );
    }
    const initial = Math.min(size, CNODE_SLOTS_INITIAL);
    this.slots = new Array<Cap | undefined>(initial).fill(undefined);
    // Generations start at 1 so a bare slot index (generation 0) never names a capability.
    this.generations = new Uint32Array(initial).fill(1);
  }

  /** Grows the backing arrays to hold at least `slots` slots (at most `size`). */
  private grow(slots: number): void {
    const cap = Math.min(this.size, Math.max(slots, this.slots.length * 2));
    const old = this.slots.length;
    for (let i = old; i < cap; i++) this.slots.push(undefined);
    const g = new Uint32Array(cap).fill(1);
    g.set(this.generations);
    this.generations = g;
  }

  /** Number of occupied slots. */
  get count(): number {
    return this.used;
  }

  /** The capability a cptr names, or undefined when empty, stale or out of range. */
  lookup(cptr: number): Cap | undefined {
    if (!Number.isInteger(cptr) || cptr < 0) return undefined;
    const slot = cptr & SLOT_MASK;
    if (slot >= this.slots.length || this.generations[slot] !== cptr >>> CPTR_SLOT_BITS)
      return undefined;
    return this.slots[slot];
  }

  /** The current cptr of a slot. */
  cptrOf(slot: number): number {
    const g = slot < this.generations.length ? (this.generations[slot] as number) : 1;
    return (g << CPTR_SLOT_BITS) | slot;
  }

  /** Places `cap` in a free slot and returns its cptr, or -1 when the CNode is full. */
  insert(cap: Cap): number {
    if (this.used === this.size) return -1;
    if (this.used === this.slots.length) this.grow(this.used + 1);
    const n = this.slots.length;
    for (let i = 0; i < n; i++) {
      const slot = (this.hint + i) % n;
      if (this.slots[slot] === undefined) {
        this.slots[slot] = cap;
        cap.cnode = this;
        cap.slot = slot;
        this.used++;
        this.hint = slot + 1;
        return this.cptrOf(slot);
      }
    }
    kassert(false, 'CNode used count out of sync');
  }

  /** Places `cap` in an empty `slot` with the given generation (shadow CSpaces mirror cptrs). */
  placeAt(cap: Cap, slot: number, generation: number): void {
    kassert(
      slot >= 0 && slot < this.size && this.slots[slot] === undefined,
      'placeAt needs an empty slot',
    );
    if (slot >= this.slots.length) this.grow(slot + 1);
    this.slots[slot] = cap;
    this.generations[slot] = generation;
    cap.cnode = this;
    cap.slot = slot;
    this.used++;
  }

  /** Empties `cap`'s slot and bumps the slot's generation so old cptrs go stale. */
  vacate(cap: Cap): void {
    kassert(
      cap.cnode === this && this.slots[cap.slot] === cap,
      'vacate of a cap not in this CNode',
    );
    this.slots[cap.slot] = undefined;
    const g = (this.generations[cap.slot] as number) + 1;
    this.generations[cap.slot] = g > CPTR_GENERATION_MAX ? 1 : g;
    this.used--;
    cap.cnode = null;
    cap.slot = -1;
  }
}

/** Creates the original capability of a new object (a root of the derivation tree). */
export function originalCap(obj: KObject, rights: number): Cap {
  return new Cap(obj, rights, 0n);
}

function link(parent: Cap, child: Cap): void {
  child.parent = parent;
  child.prevSibling = null;
  child.nextSibling = parent.firstChild;
  if (parent.firstChild !== null) parent.firstChild.prevSibling = child;
  parent.firstChild = child;
}

function unlink(cap: Cap): void {
  if (cap.prevSibling !== null) cap.prevSibling.nextSibling = cap.nextSibling;
  else if (cap.parent !== null) cap.parent.firstChild = cap.nextSibling;
  if (cap.nextSibling !== null) cap.nextSibling.prevSibling = cap.prevSibling;
  cap.parent = null;
  cap.nextSibling = null;
  cap.prevSibling = null;
}

/**
 * Derives a child of `src` with `rights & src.rights` and the given badge (copy keeps the
 * parent's badge; mint may set one only on an unbadged cap). Returns undefined when a badge is
 * requested on an already badged cap.
 */
export function derive(src: Cap, rights: number, badge?: bigint): Cap | undefined {
  kassert(src.live, 'derive from a dead cap');
  if (badge !== undefined && badge !== 0n && src.badge !== 0n) return undefined;
  const child = new Cap(
    src.obj,
    rights & src.rights,
    badge === undefined || badge === 0n ? src.badge : badge,
  );
  link(src, child);
  return child;
}

/** Moves `cap` to `dst` keeping its place in the derivation tree; returns the new cptr or -1. */
export function moveCap(cap: Cap, dst: CNode): number {
  kassert(cap.live && cap.cnode !== null, 'move of a cap outside a CNode');
  const from = cap.cnode;
  from.vacate(cap);
  const cptr = dst.insert(cap);
  if (cptr < 0) from.insert(cap);
  return cptr;
}

function destroy(cap: Cap): void {
  cap.live = false;
  if (cap.cnode !== null) cap.cnode.vacate(cap);
  cap.obj.release();
}

/** Deletes one cap; its children move up to its parent (or become roots). */
export function deleteCap(cap: Cap): void {
  if (!cap.live) return;
  const parent = cap.parent;
  let child = cap.firstChild;
  unlink(cap);
  cap.firstChild = null;
  while (child !== null) {
    const next = child.nextSibling;
    child.parent = null;
    child.prevSibling = null;
    child.nextSibling = null;
    if (parent !== null) link(parent, child);
    child = next;
  }
  destroy(cap);
}

/**
 * Deletes every descendant of `cap` (and only those), iteratively so a deep tree cannot
 * overflow the stack. Returns the number of capabilities deleted.
 */
export function revokeCap(cap: Cap): number {
  let deleted = 0;
  const stack: Cap[] = [];
  let child = cap.firstChild;
  cap.firstChild = null;
  while (child !== null) {
    stack.push(child);
    child = child.nextSibling;
  }
  while (stack.length > 0) {
    const c = stack.pop() as Cap;
    let g = c.firstChild;
    while (g !== null) {
      stack.push(g);
      g = g.nextSibling;
    }
    c.parent = null;
    c.firstChild = null;
    c.nextSibling = null;
    c.prevSibling = null;
    destroy(c);
    deleted++;
  }
  return deleted;
}

/** True when `anc` is a strict ancestor of `cap` in the derivation tree. */
export function isAncestor(anc: Cap, cap: Cap): boolean {
  for (let p = cap.parent; p !== null; p = p.parent) if (p === anc) return true;
  return false;
}
