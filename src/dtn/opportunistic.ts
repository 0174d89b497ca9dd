/**
 * Routing for opportunistic contacts, where no schedule is known: epidemic routing (Vahdat and
 * Becker, 2000: on every encounter exchange summary vectors and copy what the peer lacks) and
 * binary spray-and-wait (Spyropoulos et al., 2005: a bundle starts with L copies; a node with
 * n > 1 copies hands floor(n/2) to a peer that lacks the bundle, a node with one copy waits to
 * meet the destination). Both are pure decision logic over bundle ids; the agent moves bytes.
 */
import { assert } from '../core/index.ts';
import { SPRAY_COPIES_MAX } from './limits.ts';

/** What an opportunistic router knows about one held bundle. */
export interface HeldBundle {
  readonly id: string;
  /** Node key of the bundle's destination. */
  readonly destination: string;
}

/** A decision: which held bundles to copy to the peer, and how many copies each carries. */
export interface Handoff {
  readonly id: string;
  readonly copies: number;
}

/** The contract of an opportunistic router. */
export interface OpportunisticRouter {
  readonly name: string;
  /** Registers a bundle this node now holds (created here, or received with `copies`). */
  hold(bundle: HeldBundle, copies?: number): void;
  /** Forgets a bundle (delivered, expired or deleted). */
  drop(id: string): void;
  /** Decides what to hand to `peer`, given the peer's summary vector. Updates copy counts. */
  encounter(peer: string, peerHas: ReadonlySet<string>): Handoff[];
  /** The summary vector: ids of bundles held. */
  summary(): ReadonlySet<string>;
}

/** Epidemic routing: copy every bundle the peer lacks. */
export class EpidemicRouter implements OpportunisticRouter {
  readonly name = 'epidemic';
  private readonly held = new Map<string, HeldBundle>();

  hold(bundle: HeldBundle): void {
    this.held.set(bundle.id, bundle);
  }

  drop(id: string): void {
    this.held.delete(id);
  }

  encounter(_peer: string, peerHas: ReadonlySet<string>): Handoff[] {
    const out: Handoff[] = [];
    for (const id of this.held.keys()) if (!peerHas.has(id)) out.push({ id, copies: 1 });
    return out;
  }

  summary(): ReadonlySet<string> {
    return new Set(this.held.keys());
  }
}

/** Binary spray-and-wait with `copies` (L) copies per new bundle. */
export class SprayAndWaitRouter implements OpportunisticRouter {
  readonly name = 'spray-and-wait';
  private readonly held = new Map<string, { bundle: HeldBundle; copies: number }>();

  constructor(private readonly initialCopies: number) {
    assert(
      Number.isInteger(initialCopies) && initialCopies >= 1 && initialCopies <= SPRAY_COPIES_MAX,
      'spray copies in 1..SPRAY_COPIES_MAX',
    );
  }

  hold(bundle: HeldBundle, copies = this.initialCopies): void {
    this.held.set(bundle.id, { bundle, copies: Math.max(1, Math.min(copies, SPRAY_COPIES_MAX)) });
  }

  drop(id: string): void {
    this.held.delete(id);
  }

  /** Copies this node holds of a bundle (0 if none). */
  copiesOf(id: string): number {
    return this.held.get(id)?.copies ?? 0;
  }

  encounter(peer: string, peerHas: ReadonlySet<string>): Handoff[] {
    const out: Handoff[] = [];
    for (const [id, h] of this.held) {
      if (peerHas.has(id)) continue;
      if (h.bundle.destination === peer) {
        // The wait phase ends at the destination: deliver directly, whatever the copy count.
        out.push({ id, copies: 1 });
      } else if (h.copies > 1) {
        const give = Math.floor(h.copies / 2);
        h.copies -= give;
        out.push({ id, copies: give });
      }
    }
    return out;
  }

  summary(): ReadonlySet<string> {
    return new Set(this.held.keys());
  }
}

/** A bundle carried opportunistically: its encoded bytes and its destination node key. */
interface Carried {
  readonly bytes: Uint8Array;
  readonly destination: string;
}

/**
 * A node of an opportunistic network: it carries encoded bundles and, on each encounter, hands
 * the peer what its router decides. Bundles for the node itself go to `deliver` (typically a
 * {@link import('./agent.ts').BundleAgent}'s `receive`), once.
 */
export class OpportunisticCarrier {
  private readonly carried = new Map<string, Carried>();
  private readonly delivered = new Set<string>();
  /** Copies handed to peers. */
  transmissions = 0;

  constructor(
    readonly key: string,
    readonly router: OpportunisticRouter,
    private readonly deliver: (bytes: Uint8Array) => void,
  ) {}

  /** Starts carrying a bundle (created here or received from a peer). */
  carry(id: string, destination: string, bytes: Uint8Array, copies?: number): void {
    if (destination === this.key) {
      if (!this.delivered.has(id)) {
        this.delivered.add(id);
        this.deliver(bytes);
      }
      return;
    }
    if (this.carried.has(id)) return;
    this.carried.set(id, { bytes, destination });
    this.router.hold({ id, destination }, copies);
  }

  /** Bundles the peer should see as already known (carried or delivered here). */
  knows(): ReadonlySet<string> {
    return new Set([...this.router.summary(), ...this.delivered]);
  }

  /** One encounter with `peer`: this node's router decides what to hand over. */
  meet(peer: OpportunisticCarrier): void {
    for (const h of this.router.encounter(peer.key, peer.knows())) {
      const c = this.carried.get(h.id);
      if (c === undefined) continue;
      this.transmissions++;
      peer.carry(h.id, c.destination, c.bytes, h.copies);
      if (c.destination === peer.key) {
        // Delivered: stop carrying it (the destination now answers "known" anyway).
        this.carried.delete(h.id);
        this.router.drop(h.id);
      }
    }
  }
}
