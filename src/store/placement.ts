/**
 * Placement: where the k + m shards of a stripe live. The rule is deterministic, so any node
 * that knows the member set and the block's CID computes the same answer without a lookup
 * table (the idea of CRUSH and of rendezvous / highest-random-weight hashing, Thaler & Ravishankar
 * 1998):
 *
 * 1. Scope. A profile names a preferred failure-domain scope (pod, hub, region, global). Among
 *    the domains of that level that hold at least k + m member tiles, the stripe goes to the one
 *    with the highest rendezvous score for its CID; if none is large enough, the scope widens to
 *    the parent level. So 4+2 stays inside one pod when pods have ≥ 6 tiles, and spreads over a
 *    hub otherwise.
 * 2. Slots. Every (slot i, tile) pair of the scope gets a score hash(cid, i, tile); pairs are
 *    taken from the highest score down when the slot is empty, the tile unused, and its hub and
 *    pod still have room: at most ceil(n / hubs) shards per hub and ceil(n / pods) per pod, so a
 *    stripe survives the loss of a whole pod when it spans enough pods. If the caps cannot be
 *    met (uneven domains) they are relaxed, never the distinct-tile rule.
 *
 * Removing a tile changes the slots it held and, sometimes, a slot whose pair ranked below the
 * one the displaced slot takes next; adding one moves the slots it now wins and their knock-on. test/store/placement.test.ts
 * measures the moved fraction against the minimum.
 */
import { assert, type Topology } from '../core/index.ts';
import { StoreError, StoreErrorCode } from './errors.ts';
import { PROFILE_DATA_SHARDS_MIN, STRIPE_SHARDS_MAX } from './limits.ts';

/** Scope levels a profile may prefer, narrowest first. */
export const SCOPES = ['pod', 'hub', 'region', 'global'] as const;
/** A failure-domain scope. */
export type Scope = (typeof SCOPES)[number];

/** An erasure-coding and placement profile for a class of objects. */
export interface Profile {
  readonly name: string;
  /** Data shards. */
  readonly k: number;
  /** Parity shards: up to m shards of a stripe may be lost. */
  readonly m: number;
  /** Preferred failure-domain scope of one stripe. */
  readonly scope: Scope;
}

/** The built-in profiles: small local stripes inside a pod, wide stripes across a hub. */
export const DEFAULT_PROFILES: readonly Profile[] = [
  { name: 'pod-4+2', k: 4, m: 2, scope: 'pod' },
  { name: 'hub-10+4', k: 10, m: 4, scope: 'hub' },
];
/** Profile used when a put names none. */
export const DEFAULT_PROFILE_NAME = 'pod-4+2';

const PROFILE_RE = /^(\d{1,3})\+(\d{1,3})(?:@(pod|hub|region|global))?$/;

/**
 * Resolves a profile name: one of `profiles`, or an inline spec `K+M[@scope]` (e.g. `6+3@hub`).
 * @throws {StoreError} `STORE_BAD_PROFILE`
 */
export function resolveProfile(
  name: string,
  profiles: readonly Profile[] = DEFAULT_PROFILES,
): Profile {
  const known = profiles.find((p) => p.name === name);
  if (known !== undefined) return validateProfile(known);
  const m = PROFILE_RE.exec(name);
  if (m === null) {
    throw new StoreError(
      StoreErrorCode.BadProfile,
      `unknown profile "${name}"; use one of ${profiles.map((p) => p.name).join(', ')} or K+M[@pod|hub|region|global]`,
      {
        details: { profile: name },
      },
    );
  }
  return validateProfile({
    name,
    k: Number(m[1]),
    m: Number(m[2]),
    scope: (m[3] as Scope | undefined) ?? 'global',
  });
}

/** Checks a profile's parameters. @throws {StoreError} `STORE_BAD_PROFILE` */
export function validateProfile(p: Profile): Profile {
  if (
    !Number.isInteger(p.k) ||
    !Number.isInteger(p.m) ||
    p.k < PROFILE_DATA_SHARDS_MIN ||
    p.m < 1 ||
    p.k + p.m > STRIPE_SHARDS_MAX ||
    !SCOPES.includes(p.scope)
  ) {
    throw new StoreError(
      StoreErrorCode.BadProfile,
      `profile "${p.name}": need k ≥ ${PROFILE_DATA_SHARDS_MIN}, m ≥ 1, k + m ≤ ${STRIPE_SHARDS_MAX}`,
      {
        details: { profile: p.name, k: p.k, m: p.m },
      },
    );
  }
  return p;
}

interface TileInfo {
  readonly name: string;
  readonly hash: number;
  readonly pod: string;
  readonly hub: string;
  readonly region: string;
}

/** The murmur3 32-bit finaliser: a cheap mix with full avalanche. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a 32-bit hash of a string, mixed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

function score(seed: number, salt: number, item: number): number {
  return fmix32(fmix32(seed ^ Math.imul(salt + 1, 0x9e3779b1)) ^ item);
}

/**
 * A member set of tiles with their failure domains, ready to place stripes. Build one per
 * membership view; placing is a pure function of (view, cid, profile).
 */
export class PlacementMap {
  private readonly tiles: TileInfo[];
  private readonly groups = new Map<Scope, Map<string, TileInfo[]>>();
  /** Tiles per domain in the whole topology (members or not): scope choice depends only on
   * these static sizes, so a member leaving never moves a stripe out of its domain. */
  private readonly topologySizes = new Map<Scope, Map<string, number>>();

  /** @param members tile names, each present in `topology` */
  constructor(
    topology: Topology,
    readonly members: readonly string[],
  ) {
    this.tiles = [...new Set(members)].sort().map((name) => {
      const tile = topology.nodes.get(name);
      assert(tile !== undefined && tile.level === 'tile', `placement member ${name} is not a tile`);
      const pod = tile.parent ?? '';
      const hub = topology.nodes.get(pod)?.parent ?? '';
      return { name, hash: hashString(name), pod, hub, region: tile.region ?? '' };
    });
    const all = [...topology.nodes.values()]
      .filter((n) => n.level === 'tile')
      .map((t) => ({
        name: t.name,
        pod: t.parent ?? '',
        hub: topology.nodes.get(t.parent ?? '')?.parent ?? '',
        region: t.region ?? '',
      }));
    for (const scope of SCOPES) {
      const sizes = new Map<string, number>();
      for (const t of all) {
        const key = scope === 'global' ? '*' : t[scope];
        sizes.set(key, (sizes.get(key) ?? 0) + 1);
      }
      this.topologySizes.set(scope, sizes);
      const g = new Map<string, TileInfo[]>();
      for (const t of this.tiles) {
        const key = scope === 'global' ? '*' : t[scope];
        let list = g.get(key);
        if (list === undefined) {
          list = [];
          g.set(key, list);
        }
        list.push(t);
      }
      this.groups.set(scope, g);
    }
  }

  /** Number of member tiles. */
  get size(): number {
    return this.tiles.length;
  }

  /**
   * The tile of each shard of a stripe (index i → tile), distinct tiles.
   * @param block the block's CID string
   * @throws {StoreError} `STORE_PLACEMENT_IMPOSSIBLE` when fewer than k + m tiles are members
   */
  place(block: string, profile: Profile): string[] {
    const n = profile.k + profile.m;
    if (this.tiles.length < n) {
      throw new StoreError(
        StoreErrorCode.PlacementImpossible,
        `profile ${profile.name} needs ${n} tiles, only ${this.tiles.length} are members`,
        {
          details: { profile: profile.name, needed: n, members: this.tiles.length },
        },
      );
    }
    const seed = hashString(block);
    const { inner, outer } = this.chooseScope(seed, profile, n);
    return this.fillSlots(seed, inner, outer, n);
  }

  /**
   * Picks the stripe's domain among those of the profile's scope level that the topology makes
   * big enough, by rendezvous score. Its member tiles are preferred (`inner`); when too few are
   * members right now, the members of the enclosing domains make up the rest (`outer`).
   */
  private chooseScope(
    seed: number,
    profile: Profile,
    n: number,
  ): { inner: TileInfo[]; outer: TileInfo[] } {
    for (let s = SCOPES.indexOf(profile.scope); s < SCOPES.length; s++) {
      const level = SCOPES[s] as Scope;
      let bestKey: string | undefined;
      let bestScore = -1;
      for (const [key, size] of this.topologySizes.get(level) ?? []) {
        if (size < n) continue;
        const sc = score(seed, 0x5c0be, hashString(key));
        if (sc > bestScore) {
          bestScore = sc;
          bestKey = key;
        }
      }
      if (bestKey === undefined) continue;
      const inner = this.groups.get(level)?.get(bestKey) ?? [];
      if (inner.length >= n) return { inner, outer: [] };
      // Widen to the smallest enclosing domain with enough members.
      for (let up = s + 1; up < SCOPES.length; up++) {
        const upLevel = SCOPES[up] as Scope;
        const sample =
          inner[0] ??
          this.tiles.find(
            (t) => level === 'global' || t[level as Exclude<Scope, 'global'>] === bestKey,
          );
        const upKey =
          upLevel === 'global' ? '*' : sample === undefined ? undefined : sample[upLevel];
        const wider = upKey === undefined ? undefined : this.groups.get(upLevel)?.get(upKey);
        if (wider !== undefined && wider.length >= n)
          return { inner, outer: wider.filter((t) => !inner.includes(t)) };
      }
      return { inner, outer: this.tiles.filter((t) => !inner.includes(t)) };
    }
    assert(false, 'the global scope holds every tile');
  }

  /**
   * Fills the slots in the spirit of CRUSH's "indep" mode, which keeps erasure-coded positions
   * stable: every (slot, tile) pair gets a rendezvous score and pairs are taken greedily from the
   * highest score down, a pair being taken when its slot is empty, its tile unused and its pod
   * and hub under their caps. A slot keeps its tile unless that tile left or a pair above it
   * changed, so one membership change moves few slots besides the ones it must.
   */
  private fillSlots(
    seed: number,
    inner: readonly TileInfo[],
    outer: readonly TileInfo[],
    n: number,
  ): string[] {
    const scope = [...inner, ...outer];
    const tier = new Set(outer.map((t) => t.name));
    // Spreading caps apply inside a full domain; a domain short of members keeps locality instead.
    const podCap = outer.length > 0 ? n : Math.ceil(n / new Set(scope.map((t) => t.pod)).size);
    const hubCap = outer.length > 0 ? n : Math.ceil(n / new Set(scope.map((t) => t.hub)).size);
    const pairs: { slot: number; tile: TileInfo; score: number }[] = [];
    for (let slot = 0; slot < n; slot++) {
      for (const tile of scope) pairs.push({ slot, tile, score: score(seed, slot, tile.hash) });
    }
    // Tiles of the stripe's own domain come first; then score; ties by slot then tile name, so
    // the order is total and deterministic.
    const rank = (t: TileInfo): number => (tier.has(t.name) ? 1 : 0);
    pairs.sort(
      (a, b) =>
        rank(a.tile) - rank(b.tile) ||
        b.score - a.score ||
        a.slot - b.slot ||
        (a.tile.name < b.tile.name ? -1 : 1),
    );
    const out: (string | undefined)[] = new Array(n).fill(undefined);
    const used = new Set<string>();
    const podLoad = new Map<string, number>();
    const hubLoad = new Map<string, number>();
    let filled = 0;
    // Pass 0 honours both caps, pass 1 only the hub cap, pass 2 only distinct tiles (uneven domains).
    for (let pass = 0; pass < 3 && filled < n; pass++) {
      for (const { slot, tile } of pairs) {
        if (out[slot] !== undefined || used.has(tile.name)) continue;
        if (pass < 2 && (hubLoad.get(tile.hub) ?? 0) >= hubCap) continue;
        if (pass < 1 && (podLoad.get(tile.pod) ?? 0) >= podCap) continue;
        out[slot] = tile.name;
        used.add(tile.name);
        podLoad.set(tile.pod, (podLoad.get(tile.pod) ?? 0) + 1);
        hubLoad.set(tile.hub, (hubLoad.get(tile.hub) ?? 0) + 1);
        if (++filled === n) break;
      }
    }
    assert(filled === n, 'scope holds at least n tiles');
    return out as string[];
  }
}

/** Tile names of a topology, in topology order. */
export function topologyTiles(topology: Topology): string[] {
  return [...topology.nodes.values()].filter((n) => n.level === 'tile').map((n) => n.name);
}
