/**
 * Contact-graph routing (CGR) over a scheduled contact plan, in HDTN's JSON format
 * (`{"contacts":[{contact, source, dest, startTime, endTime, rateBitsPerSec, owlt}]}`, times in
 * seconds). The graph's vertices are contacts; a route is a chain of contacts. Following HDTN
 * (and pyCGR): a contact is usable from time t when `endTime > t`, arrival over it is
 * `max(startTime, t) + owlt`, and the search starts from a root contact at the source with
 * arrival time `t0`. {@link cgrDijkstra} finds the earliest-arrival route (ties go to the
 * contact that comes first in the plan); {@link cgrYen} adds Yen's algorithm for k routes.
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { DtnError, DtnErrorCode } from './errors.ts';
import { CONTACT_PLAN_CONTACTS_MAX, CONTACT_PLAN_FILE_BYTES_MAX, ROUTES_K_MAX } from './limits.ts';

/** One scheduled contact: `source` can send to `dest` between start and end (seconds). */
export interface Contact {
  /** The plan's own id of the contact. */
  readonly id: number;
  /** 0-based position in the plan. */
  readonly index: number;
  readonly source: number;
  readonly dest: number;
  readonly startSec: number;
  readonly endSec: number;
  readonly rateBitsPerSec: number;
  readonly owltSec: number;
}

/** A contact plan indexed by sending node. */
export interface ContactPlan {
  readonly contacts: readonly Contact[];
  readonly bySource: ReadonlyMap<number, readonly Contact[]>;
}

/** A route: the contacts to traverse, the first hop and the best-case arrival time. */
export interface Route {
  readonly contacts: readonly Contact[];
  readonly nextHop: number;
  readonly arrivalSec: number;
  /** Bits the route can carry at most: the smallest contact volume along it. */
  readonly volumeBits: number;
}

const contactSchema = z.object({
  contact: z.number().int().nonnegative(),
  source: z.number().int().nonnegative(),
  dest: z.number().int().nonnegative(),
  startTime: z.number().nonnegative(),
  endTime: z.number().nonnegative(),
  rateBitsPerSec: z.number().nonnegative(),
  owlt: z.number().nonnegative(),
});
const planSchema = z.object({ contacts: z.array(contactSchema).max(CONTACT_PLAN_CONTACTS_MAX) });

/** Error for a malformed contact plan or routing request. */
export class ContactPlanError extends DtnError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(DtnErrorCode.ContactPlan, message, options);
    this.name = 'ContactPlanError';
  }
}

/** Builds an indexed plan from contacts. */
export function buildContactPlan(contacts: readonly Omit<Contact, 'index'>[]): ContactPlan {
  const list: Contact[] = contacts.map((c, index) => ({ ...c, index }));
  const bySource = new Map<number, Contact[]>();
  for (const c of list) {
    // HDTN's 10-node plan holds contacts whose end precedes their start; HDTN keeps them and
    // applies its usual rule (usable while end > t), and so do we, to agree with its routes.
    if (!Number.isFinite(c.endSec - c.startSec))
      throw new ContactPlanError(`contact ${c.id}: times must be finite`);
    let arr = bySource.get(c.source);
    if (arr === undefined) {
      arr = [];
      bySource.set(c.source, arr);
    }
    arr.push(c);
  }
  return { contacts: list, bySource };
}

/**
 * Parses an HDTN-format contact plan (object or JSON text).
 * @throws {ContactPlanError} naming the first bad field.
 */
export function parseContactPlan(input: unknown): ContactPlan {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (cause) {
      throw new ContactPlanError(`contact plan is not JSON: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
  const parsed = planSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ContactPlanError(
      `contact plan: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return buildContactPlan(
    parsed.data.contacts.map((c) => ({
      id: c.contact,
      source: c.source,
      dest: c.dest,
      startSec: c.startTime,
      endSec: c.endTime,
      rateBitsPerSec: c.rateBitsPerSec,
      owltSec: c.owlt,
    })),
  );
}

/** Reads a contact plan file. @throws {ContactPlanError} */
export function loadContactPlan(path: string): ContactPlan {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (cause) {
    throw new ContactPlanError(
      `cannot read contact plan ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause },
    );
  }
  if (size > CONTACT_PLAN_FILE_BYTES_MAX)
    throw new ContactPlanError(`contact plan ${path} exceeds CONTACT_PLAN_FILE_BYTES_MAX`);
  return parseContactPlan(readFileSync(path, 'utf8'));
}

/** Serialises a plan back to HDTN's JSON shape. */
export function contactPlanToJson(plan: ContactPlan): { contacts: Record<string, number>[] } {
  return {
    contacts: plan.contacts.map((c) => ({
      contact: c.id,
      source: c.source,
      dest: c.dest,
      startTime: c.startSec,
      endTime: c.endSec,
      rateBitsPerSec: c.rateBitsPerSec,
      owlt: c.owltSec,
    })),
  };
}

/** Options of one Dijkstra search. */
export interface DijkstraOptions {
  /** Contacts that may not be used (Yen's suppression). */
  readonly suppressed?: ReadonlySet<Contact>;
  /** Nodes the route may not enter (loop avoidance; the source is always excluded). */
  readonly excludedNodes?: ReadonlySet<number>;
  /**
   * Size of the bundle to route, in bits: a contact is not used when the volume it has left is
   * smaller — the time left once the bundle could reach it (`(end − max(start, t)) · rate`), and
   * its whole volume less `bookedBits` (ION's CGR: a route must have the volume to carry it).
   */
  readonly bundleBits?: number;
  /** Bits already committed to a contact by bundles sent or queued on it (local knowledge). */
  readonly bookedBits?: (c: Contact) => number;
}

/** Volume a contact still offers from time `t` on, in bits. */
export function contactVolumeFromBits(c: Contact, t: number): number {
  return Math.max(0, c.endSec - Math.max(c.startSec, t)) * c.rateBitsPerSec;
}

/** A binary min-heap keyed by (arrival, plan index) so equal arrivals pop in plan order. */
class ArrivalHeap {
  private readonly items: { c: Contact; t: number }[] = [];

  get size(): number {
    return this.items.length;
  }

  push(c: Contact, t: number): void {
    const a = this.items;
    a.push({ c, t });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i] as { c: Contact; t: number }, a[p] as { c: Contact; t: number })) break;
      [a[i], a[p]] = [a[p] as { c: Contact; t: number }, a[i] as { c: Contact; t: number }];
      i = p;
    }
  }

  pop(): { c: Contact; t: number } | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (
          l < a.length &&
          less(a[l] as { c: Contact; t: number }, a[m] as { c: Contact; t: number })
        )
          m = l;
        if (
          r < a.length &&
          less(a[r] as { c: Contact; t: number }, a[m] as { c: Contact; t: number })
        )
          m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as { c: Contact; t: number }, a[i] as { c: Contact; t: number }];
        i = m;
      }
    }
    return top;
  }
}

function less(x: { c: Contact; t: number }, y: { c: Contact; t: number }): boolean {
  return x.t < y.t || (x.t === y.t && x.c.index < y.c.index);
}

/**
 * Earliest-arrival route from `from` (at time `atSec`) to `to` over the contact graph, or
 * undefined when none exists. Runs in O(C log C) for C contacts.
 */
export function cgrDijkstra(
  plan: ContactPlan,
  from: number,
  to: number,
  atSec: number,
  options: DijkstraOptions = {},
): Route | undefined {
  const r = searchFrom(plan, from, to, atSec, options);
  return r === undefined ? undefined : makeRoute(r.contacts, r.arrival);
}

function searchFrom(
  plan: ContactPlan,
  from: number,
  to: number,
  atSec: number,
  options: DijkstraOptions,
): { contacts: Contact[]; arrival: number } | undefined {
  if (from === to) return undefined;
  const best = new Map<Contact, number>();
  const pred = new Map<Contact, Contact | undefined>();
  const done = new Set<Contact>();
  const heap = new ArrivalHeap();
  const excluded = options.excludedNodes;
  const relax = (c: Contact, t: number, p: Contact | undefined): void => {
    if (done.has(c) || options.suppressed?.has(c) === true) return;
    if (c.endSec <= t) return;
    if (c.dest === from || excluded?.has(c.dest) === true) return;
    if (options.bundleBits !== undefined) {
      // What is left is bounded both by the time left in the contact and by its whole volume
      // less what is already committed to it (ION's residual capacity).
      const booked = options.bookedBits?.(c) ?? 0;
      const left = Math.min(
        contactVolumeFromBits(c, t),
        contactVolumeFromBits(c, c.startSec) - booked,
      );
      if (left < options.bundleBits) return;
    }
    const arrival = Math.max(c.startSec, t) + c.owltSec;
    const prev = best.get(c);
    if (prev !== undefined && prev <= arrival) return;
    best.set(c, arrival);
    pred.set(c, p);
    heap.push(c, arrival);
  };
  for (const c of plan.bySource.get(from) ?? []) relax(c, atSec, undefined);
  while (heap.size > 0) {
    const top = heap.pop() as { c: Contact; t: number };
    if (done.has(top.c) || best.get(top.c) !== top.t) continue;
    done.add(top.c);
    if (top.c.dest === to) {
      const path: Contact[] = [];
      for (let c: Contact | undefined = top.c; c !== undefined; c = pred.get(c)) path.push(c);
      return { contacts: path.reverse(), arrival: top.t };
    }
    // Loop avoidance: never re-enter a node already on this contact's path (pyCGR's rule).
    const onPath = new Set<number>();
    for (let c: Contact | undefined = top.c; c !== undefined; c = pred.get(c)) onPath.add(c.source);
    for (const next of plan.bySource.get(top.c.dest) ?? []) {
      if (onPath.has(next.dest)) continue;
      relax(next, top.t, top.c);
    }
  }
  return undefined;
}

function makeRoute(contacts: readonly Contact[], arrivalSec: number): Route {
  const first = contacts[0] as Contact;
  let volumeBits = Number.POSITIVE_INFINITY;
  for (const c of contacts)
    volumeBits = Math.min(volumeBits, (c.endSec - c.startSec) * c.rateBitsPerSec);
  return { contacts, nextHop: first.dest, arrivalSec, volumeBits };
}

function arrivalAlong(contacts: readonly Contact[], atSec: number): number {
  let t = atSec;
  for (const c of contacts) t = Math.max(c.startSec, t) + c.owltSec;
  return t;
}

/**
 * Up to `k` loop-free routes in order of arrival time (Yen's algorithm over the contact
 * graph): each next route deviates from an earlier one at some spur contact, with the
 * contacts earlier routes took from the same root path suppressed.
 */
export function cgrYen(
  plan: ContactPlan,
  from: number,
  to: number,
  atSec: number,
  k: number,
): Route[] {
  if (!Number.isInteger(k) || k < 1 || k > ROUTES_K_MAX)
    throw new ContactPlanError(`k must be in 1..${ROUTES_K_MAX}`);
  const first = searchFrom(plan, from, to, atSec, {});
  if (first === undefined) return [];
  const found: Contact[][] = [first.contacts];
  const candidates: { contacts: Contact[]; arrival: number }[] = [];
  const key = (p: readonly Contact[]): string => p.map((c) => c.index).join(',');
  const seen = new Set<string>([key(first.contacts)]);
  while (found.length < k) {
    const last = found[found.length - 1] as Contact[];
    for (let i = 0; i < last.length; i++) {
      const rootPath = last.slice(0, i);
      const spurNode = i === 0 ? from : (rootPath[i - 1] as Contact).dest;
      const spurTime = arrivalAlong(rootPath, atSec);
      const suppressed = new Set<Contact>();
      for (const p of found)
        if (p.length > i && key(p.slice(0, i)) === key(rootPath)) suppressed.add(p[i] as Contact);
      const excludedNodes = new Set<number>([from, ...rootPath.map((c) => c.source)]);
      excludedNodes.delete(spurNode);
      const spur = searchFrom(plan, spurNode, to, spurTime, { suppressed, excludedNodes });
      if (spur === undefined) continue;
      const total = [...rootPath, ...spur.contacts];
      const kk = key(total);
      if (seen.has(kk)) continue;
      seen.add(kk);
      candidates.push({ contacts: total, arrival: spur.arrival });
    }
    if (candidates.length === 0) break;
    candidates.sort((a, b) => a.arrival - b.arrival || a.contacts.length - b.contacts.length);
    found.push((candidates.shift() as { contacts: Contact[] }).contacts);
  }
  return found.map((p) => makeRoute(p, arrivalAlong(p, atSec)));
}
