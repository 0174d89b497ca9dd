/**
 * The scheduler, in the Nomad / kube-scheduler mould: a *feasibility* pass filters tiles
 * (alive and schedulable, labels, capabilities, subtree, free CPU and memory, required
 * affinity and anti-affinity), a *scoring* pass ranks the feasible ones (bin-packing or
 * spread by utilisation, spread targets across pods or hubs, preferred affinities), and when
 * nothing fits, *preemption* evicts lower-priority instances from the tile where that costs
 * least (lowest highest-victim priority, then fewest victims — kube-scheduler's ordering).
 *
 * Like kube-scheduler's `percentageOfNodesToScore`, placement stops searching once it has
 * found enough feasible tiles (a rotating start spreads the search), which keeps a placement
 * in O(sample) rather than O(tiles) on large fabrics; `explain` always scans every tile.
 */
import { assert } from '../core/index.ts';
import { EXPLAIN_TILES_LISTED_MAX, PREEMPT_VICTIMS_MAX } from './limits.ts';
import type { WorkloadSpec } from './workload.ts';

/** Feasible tiles a placement looks for before it stops searching (at least). */
export const SCORE_SAMPLE_TILES_MIN = 100;
/** Share of candidate tiles a placement scores (kube-scheduler adapts 5-50 %; we take 5 %). */
export const SCORE_SAMPLE_PERCENT = 5;
/** Weight of the spread-target term against the utilisation term (which is in [0, 2]). */
const SPREAD_WEIGHT = 10;
/** Weight of one preferred (soft) affinity term. */
const PREFERRED_WEIGHT = 1;

/** A tile as the scheduler sees it. */
export interface TileInfo {
  readonly name: string;
  readonly pod: string;
  readonly hub: string;
  readonly cpuMillis: number;
  readonly memoryMb: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly capabilities: readonly string[];
}

interface Tile extends TileInfo {
  readonly idx: number;
  readonly podIdx: number;
  readonly hubIdx: number;
  readonly caps: ReadonlySet<string>;
  readonly instances: Set<string>;
}

interface Placed {
  readonly id: string;
  readonly workload: string;
  readonly tile: number;
  readonly cpu: number;
  readonly mem: number;
  readonly priority: number;
}

type Scope = 'tile' | 'pod' | 'hub';
interface SpreadContext {
  readonly over: 'pod' | 'hub';
  readonly deficit: Float64Array;
}
interface Counts {
  total: number;
  readonly tile: Map<number, number>;
  readonly pod: Map<number, number>;
  readonly hub: Map<number, number>;
}

/** A placement decision. */
export interface Placement {
  readonly tile: string;
  readonly score: number;
  /** Instances evicted to make room (their workloads need rescheduling). */
  readonly victims: readonly string[];
}

/** Why one tile was rejected or how it scored. */
export interface TileVerdict {
  readonly tile: string;
  readonly feasible: boolean;
  readonly reason?: string;
  readonly score?: number;
}

/** The answer of `genesis explain`. */
export interface Explanation {
  readonly workload: string;
  readonly tilesConsidered: number;
  readonly feasible: number;
  /** Rejections grouped by reason (the reason's first words). */
  readonly rejectedBy: Readonly<Record<string, number>>;
  /** Best feasible tiles with scores, best first. */
  readonly best: readonly TileVerdict[];
  /** Up to EXPLAIN_TILES_LISTED_MAX rejected tiles with their reasons. */
  readonly rejected: readonly TileVerdict[];
  /** Where the instances are now. */
  readonly placements: Readonly<Record<string, string>>;
  readonly strategy: string;
}

function scopeIndex(t: Tile, s: Scope): number {
  return s === 'tile' ? t.idx : s === 'pod' ? t.podIdx : t.hubIdx;
}

/** The cluster state and placement logic. Pure: no I/O, no clock. */
export class Scheduler {
  private readonly tiles: Tile[] = [];
  private readonly byName = new Map<string, Tile>();
  private readonly podIdx = new Map<string, number>();
  private readonly podNames: string[] = [];
  private readonly hubIdx = new Map<string, number>();
  private readonly hubNames: string[] = [];
  private readonly placed = new Map<string, Placed>();
  private readonly counts = new Map<string, Counts>();
  private readonly candidateCache = new Map<string, Int32Array>();
  // Per-tile numbers, indexed by tile idx (flat arrays keep the placement loop fast).
  private readonly cpuCap: number[] = [];
  private readonly cpuUsed: number[] = [];
  private readonly memCap: number[] = [];
  private readonly memUsed: number[] = [];
  private readonly sched: number[] = [];
  private readonly tilePod: number[] = [];
  private readonly tileHub: number[] = [];
  private cursor = 0;

  /** Adds a tile or updates its capacity and labels (keeps its instances). */
  upsertTile(info: TileInfo): void {
    const existing = this.byName.get(info.name);
    if (existing !== undefined) {
      const same =
        existing.cpuMillis === info.cpuMillis &&
        existing.memoryMb === info.memoryMb &&
        JSON.stringify(existing.labels) === JSON.stringify(info.labels) &&
        existing.capabilities.join() === info.capabilities.join();
      if (same) return;
      Object.assign(existing, {
        cpuMillis: info.cpuMillis,
        memoryMb: info.memoryMb,
        labels: info.labels,
        capabilities: info.capabilities,
        caps: new Set(info.capabilities),
      });
      this.cpuCap[existing.idx] = info.cpuMillis;
      this.memCap[existing.idx] = info.memoryMb;
      this.candidateCache.clear();
      return;
    }
    const podIdx = this.intern(this.podIdx, this.podNames, info.pod);
    const hubIdx = this.intern(this.hubIdx, this.hubNames, info.hub);
    const t: Tile = {
      ...info,
      idx: this.tiles.length,
      podIdx,
      hubIdx,
      caps: new Set(info.capabilities),
      instances: new Set(),
    };
    this.tiles.push(t);
    this.cpuCap.push(info.cpuMillis);
    this.memCap.push(info.memoryMb);
    this.cpuUsed.push(0);
    this.memUsed.push(0);
    this.sched.push(1);
    this.tilePod.push(podIdx);
    this.tileHub.push(hubIdx);
    this.byName.set(t.name, t);
    this.candidateCache.clear();
  }

  /** Marks a tile (un)schedulable: dead, drained or unreachable tiles take no new instances. */
  setSchedulable(tile: string, schedulable: boolean): void {
    const t = this.byName.get(tile);
    if (t !== undefined) this.sched[t.idx] = schedulable ? 1 : 0;
  }

  /** True when the tile is known and schedulable. */
  isSchedulable(tile: string): boolean {
    const t = this.byName.get(tile);
    return t !== undefined && this.sched[t.idx] === 1;
  }

  /** Number of tiles known. */
  get tileCount(): number {
    return this.tiles.length;
  }

  /** Number of instances placed. */
  get placedCount(): number {
    return this.placed.size;
  }

  /** Where an instance is placed. */
  placementOf(id: string): string | undefined {
    const p = this.placed.get(id);
    return p === undefined ? undefined : this.tiles[p.tile]?.name;
  }

  /** Instances placed on a tile. */
  instancesOn(tile: string): string[] {
    return [...(this.byName.get(tile)?.instances ?? [])];
  }

  /** Free CPU and memory of a tile. */
  freeOn(tile: string): { cpuMillis: number; memoryMb: number } | undefined {
    const t = this.byName.get(tile);
    return t === undefined
      ? undefined
      : {
          cpuMillis: (this.cpuCap[t.idx] as number) - (this.cpuUsed[t.idx] as number),
          memoryMb: (this.memCap[t.idx] as number) - (this.memUsed[t.idx] as number),
        };
  }

  /** Records an existing placement (e.g. loaded from the desired-state store). */
  bind(id: string, spec: WorkloadSpec, tile: string): boolean {
    const t = this.byName.get(tile);
    if (t === undefined) return false;
    this.unbind(id);
    const p: Placed = {
      id,
      workload: spec.name,
      tile: t.idx,
      cpu: spec.cpuMillis,
      mem: spec.memoryMb,
      priority: spec.priority,
    };
    this.placed.set(id, p);
    this.cpuUsed[t.idx] = (this.cpuUsed[t.idx] as number) + p.cpu;
    this.memUsed[t.idx] = (this.memUsed[t.idx] as number) + p.mem;
    t.instances.add(id);
    const c = this.countsOf(spec.name);
    c.total++;
    inc(c.tile, t.idx, 1);
    inc(c.pod, t.podIdx, 1);
    inc(c.hub, t.hubIdx, 1);
    return true;
  }

  /** Removes a placement; returns the tile it was on. */
  unbind(id: string): string | undefined {
    const p = this.placed.get(id);
    if (p === undefined) return undefined;
    this.placed.delete(id);
    const t = this.tiles[p.tile] as Tile;
    this.cpuUsed[t.idx] = (this.cpuUsed[t.idx] as number) - p.cpu;
    this.memUsed[t.idx] = (this.memUsed[t.idx] as number) - p.mem;
    t.instances.delete(id);
    const c = this.countsOf(p.workload);
    c.total--;
    inc(c.tile, t.idx, -1);
    inc(c.pod, t.podIdx, -1);
    inc(c.hub, t.hubIdx, -1);
    return t.name;
  }

  /**
   * Places one instance of `spec`: feasibility, scoring, then preemption if nothing fits.
   * Returns undefined when no tile can take it even with preemption. The placement is recorded.
   */
  place(id: string, spec: WorkloadSpec): Placement | undefined {
    const cands = this.candidates(spec);
    const n = cands.length;
    if (n === 0) return undefined;
    const want = Math.max(SCORE_SAMPLE_TILES_MIN, Math.ceil((n * SCORE_SAMPLE_PERCENT) / 100));
    const spread = this.spreadContext(spec);
    const needCpu = spec.cpuMillis;
    const needMem = spec.memoryMb;
    const binpack = spec.strategy === 'binpack';
    const required = this.requiredRules(spec);
    const hasPreferred =
      spec.affinity.some((a) => !a.required) || spec.antiAffinity.some((a) => !a.required);
    // The hot loop reads flat per-tile arrays; object-per-tile access was ~10x slower here.
    const { sched, cpuCap, cpuUsed, memCap, memUsed } = this;
    const domainOf =
      spread === undefined ? undefined : spread.over === 'pod' ? this.tilePod : this.tileHub;
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    let found = 0;
    const start = this.cursor % n;
    let scanned = 0;
    for (; scanned < n && found < want; scanned++) {
      let k = start + scanned;
      if (k >= n) k -= n;
      const i = cands[k] as number;
      if (sched[i] === 0) continue;
      const cu = cpuUsed[i] as number;
      const cc = cpuCap[i] as number;
      if (cc - cu < needCpu) continue;
      const mu = memUsed[i] as number;
      const mc = memCap[i] as number;
      if (mc - mu < needMem) continue;
      if (required !== undefined && !requiredOk(i, required)) continue;
      found++;
      const util = (cu + needCpu) / cc + (mu + needMem) / mc;
      let sc = binpack ? util : 2 - util;
      if (domainOf !== undefined && spread !== undefined)
        sc += SPREAD_WEIGHT * (spread.deficit[domainOf[i] as number] as number);
      if (hasPreferred) sc += this.preferredScore(this.tiles[i] as Tile, spec);
      if (sc > bestScore) {
        bestScore = sc;
        best = i;
      }
    }
    this.cursor = start + scanned;
    if (best >= 0) {
      this.bind(id, spec, (this.tiles[best] as Tile).name);
      return { tile: (this.tiles[best] as Tile).name, score: bestScore, victims: [] };
    }
    return this.preempt(id, spec, cands);
  }

  /** Explains where `spec` can go: every tile's verdict, scanning all tiles. */
  explain(spec: WorkloadSpec, placements: Readonly<Record<string, string>> = {}): Explanation {
    const spreadCtx = this.spreadContext(spec);
    const rejectedBy: Record<string, number> = {};
    const rejected: TileVerdict[] = [];
    const feasible: TileVerdict[] = [];
    for (const t of this.tiles) {
      const reason = this.staticReject(t, spec) ?? this.reject(t, spec);
      if (reason === undefined) {
        feasible.push({
          tile: t.name,
          feasible: true,
          score: round3(this.score(t, spec, spreadCtx)),
        });
        continue;
      }
      const key = reason.split(':')[0] as string;
      rejectedBy[key] = (rejectedBy[key] ?? 0) + 1;
      if (rejected.length < EXPLAIN_TILES_LISTED_MAX)
        rejected.push({ tile: t.name, feasible: false, reason });
    }
    feasible.sort((a, b) => (b.score ?? 0) - (a.score ?? 0));
    return {
      workload: spec.name,
      tilesConsidered: this.tiles.length,
      feasible: feasible.length,
      rejectedBy,
      best: feasible.slice(0, EXPLAIN_TILES_LISTED_MAX),
      rejected,
      placements,
      strategy: `${spec.strategy}${spec.spread === undefined ? '' : ` + spread over ${spec.spread.over}`}`,
    };
  }

  private intern(map: Map<string, number>, names: string[], key: string): number {
    let i = map.get(key);
    if (i === undefined) {
      i = names.length;
      names.push(key);
      map.set(key, i);
    }
    return i;
  }

  private countsOf(workload: string): Counts {
    let c = this.counts.get(workload);
    if (c === undefined) {
      c = { total: 0, tile: new Map(), pod: new Map(), hub: new Map() };
      this.counts.set(workload, c);
    }
    return c;
  }

  /** Tiles passing the static filters (labels, capabilities, subtree), cached per key. */
  private candidates(spec: WorkloadSpec): Int32Array {
    const key = JSON.stringify([
      spec.constraints.labels,
      spec.capabilities,
      spec.constraints.under ?? '',
    ]);
    let c = this.candidateCache.get(key);
    if (c === undefined) {
      const out: number[] = [];
      for (const t of this.tiles) if (this.staticReject(t, spec) === undefined) out.push(t.idx);
      c = Int32Array.from(out);
      this.candidateCache.set(key, c);
    }
    return c;
  }

  private staticReject(t: Tile, spec: WorkloadSpec): string | undefined {
    const under = spec.constraints.under;
    if (under !== undefined && t.name !== under && !t.name.startsWith(`${under}.`))
      return `outside scope: not under ${under}`;
    for (const k in spec.constraints.labels) {
      if (t.labels[k] !== spec.constraints.labels[k])
        return `labels: ${k}=${t.labels[k] ?? '(unset)'} wanted ${spec.constraints.labels[k]}`;
    }
    for (const c of spec.capabilities) if (!t.caps.has(c)) return `capability: missing ${c}`;
    return undefined;
  }

  /** Dynamic filters: liveness, resources, required (anti-)affinity. */
  private reject(t: Tile, spec: WorkloadSpec): string | undefined {
    const i = t.idx;
    if (this.sched[i] === 0) return 'unschedulable: not alive, drained or unreachable';
    const cpuFree = (this.cpuCap[i] as number) - (this.cpuUsed[i] as number);
    if (cpuFree < spec.cpuMillis) return `cpu: ${cpuFree} millis free, ${spec.cpuMillis} needed`;
    const memFree = (this.memCap[i] as number) - (this.memUsed[i] as number);
    if (memFree < spec.memoryMb) return `memory: ${memFree} MB free, ${spec.memoryMb} needed`;
    return this.affinityReject(t, spec);
  }

  /** Required (anti-)affinity resolved to per-tile domain lookups, once per placement. */
  private requiredRules(spec: WorkloadSpec): RequiredRule[] | undefined {
    let out: RequiredRule[] | undefined;
    for (const [terms, anti] of [
      [spec.affinity, false],
      [spec.antiAffinity, true],
    ] as const) {
      for (const a of terms) {
        if (!a.required) continue;
        const c = this.counts.get(a.workload);
        out ??= [];
        out.push({
          present: c?.[a.scope],
          domainOf:
            a.scope === 'tile' ? undefined : a.scope === 'pod' ? this.tilePod : this.tileHub,
          anti,
        });
      }
    }
    return out;
  }

  private affinityReject(t: Tile, spec: WorkloadSpec): string | undefined {
    for (const a of spec.antiAffinity) {
      if (!a.required) continue;
      const c = this.counts.get(a.workload);
      if (c !== undefined && (c[a.scope].get(scopeIndex(t, a.scope)) ?? 0) > 0)
        return `anti-affinity: ${a.workload} already in this ${a.scope}`;
    }
    for (const a of spec.affinity) {
      if (!a.required) continue;
      const c = this.counts.get(a.workload);
      if (c === undefined || (c[a.scope].get(scopeIndex(t, a.scope)) ?? 0) === 0)
        return `affinity: no ${a.workload} in this ${a.scope}`;
    }
    return undefined;
  }

  private spreadContext(spec: WorkloadSpec): SpreadContext | undefined {
    const sp = spec.spread;
    if (sp === undefined) return undefined;
    const c = this.counts.get(spec.name);
    const total = (c?.total ?? 0) + 1;
    const names = sp.over === 'pod' ? this.podNames : this.hubNames;
    const deficit = new Float64Array(names.length);
    const even = 100 / Math.max(1, names.length);
    for (let i = 0; i < names.length; i++) {
      const share = (sp.targets === undefined ? even : (sp.targets[names[i] as string] ?? 0)) / 100;
      const have = c?.[sp.over].get(i) ?? 0;
      // Positive when the domain holds less than its target share after this placement.
      deficit[i] = (share * total - have) / total;
    }
    return { over: sp.over, deficit };
  }

  private score(t: Tile, spec: WorkloadSpec, spread: SpreadContext | undefined): number {
    const i = t.idx;
    const util =
      ((this.cpuUsed[i] as number) + spec.cpuMillis) / (this.cpuCap[i] as number) +
      ((this.memUsed[i] as number) + spec.memoryMb) / (this.memCap[i] as number);
    let s = spec.strategy === 'binpack' ? util : 2 - util;
    if (spread !== undefined)
      s += SPREAD_WEIGHT * (spread.deficit[spread.over === 'pod' ? t.podIdx : t.hubIdx] as number);
    return s + this.preferredScore(t, spec);
  }

  private preferredScore(t: Tile, spec: WorkloadSpec): number {
    let s = 0;
    for (const a of spec.affinity) {
      if (a.required) continue;
      const c = this.counts.get(a.workload);
      if ((c?.[a.scope].get(scopeIndex(t, a.scope)) ?? 0) > 0) s += PREFERRED_WEIGHT;
    }
    for (const a of spec.antiAffinity) {
      if (a.required) continue;
      const c = this.counts.get(a.workload);
      if ((c?.[a.scope].get(scopeIndex(t, a.scope)) ?? 0) > 0) s -= PREFERRED_WEIGHT;
    }
    return s;
  }

  /** Finds the tile where evicting lower-priority instances makes room at least cost. */
  private preempt(id: string, spec: WorkloadSpec, cands: Int32Array): Placement | undefined {
    let best: { t: Tile; victims: Placed[]; maxPrio: number } | undefined;
    for (const i of cands) {
      const t = this.tiles[i] as Tile;
      if (this.sched[i] === 0 || spec.cpuMillis > t.cpuMillis || spec.memoryMb > t.memoryMb)
        continue;
      const lower = [...t.instances]
        .map((x) => this.placed.get(x) as Placed)
        .filter((p) => p.priority < spec.priority);
      if (lower.length === 0) continue;
      lower.sort((a, b) => a.priority - b.priority);
      let cpuFree = t.cpuMillis - (this.cpuUsed[i] as number);
      let memFree = t.memoryMb - (this.memUsed[i] as number);
      const victims: Placed[] = [];
      for (const p of lower) {
        if (cpuFree >= spec.cpuMillis && memFree >= spec.memoryMb) break;
        if (victims.length >= PREEMPT_VICTIMS_MAX) break;
        victims.push(p);
        cpuFree += p.cpu;
        memFree += p.mem;
      }
      if (cpuFree < spec.cpuMillis || memFree < spec.memoryMb) continue;
      const maxPrio = victims.reduce((m, p) => Math.max(m, p.priority), -1);
      if (
        best === undefined ||
        maxPrio < best.maxPrio ||
        (maxPrio === best.maxPrio && victims.length < best.victims.length)
      )
        best = { t, victims, maxPrio };
    }
    if (best === undefined) return undefined;
    for (const v of best.victims) this.unbind(v.id);
    // Affinity rules are rechecked after eviction; an eviction that does not help is undone.
    if (this.reject(best.t, spec) !== undefined) {
      for (const v of best.victims) this.rebind(v);
      return undefined;
    }
    this.bind(id, spec, best.t.name);
    return { tile: best.t.name, score: Number.NaN, victims: best.victims.map((v) => v.id) };
  }

  private rebind(p: Placed): void {
    const t = this.tiles[p.tile] as Tile;
    this.placed.set(p.id, p);
    this.cpuUsed[t.idx] = (this.cpuUsed[t.idx] as number) + p.cpu;
    this.memUsed[t.idx] = (this.memUsed[t.idx] as number) + p.mem;
    t.instances.add(p.id);
    const c = this.countsOf(p.workload);
    c.total++;
    inc(c.tile, t.idx, 1);
    inc(c.pod, t.podIdx, 1);
    inc(c.hub, t.hubIdx, 1);
  }
}

interface RequiredRule {
  /** Domains (tile, pod or hub indices) holding the other workload; undefined: none yet. */
  readonly present: ReadonlyMap<number, number> | undefined;
  /** Tile index → domain index; undefined when the scope is the tile itself. */
  readonly domainOf: readonly number[] | undefined;
  readonly anti: boolean;
}

function requiredOk(tile: number, rules: readonly RequiredRule[]): boolean {
  for (const r of rules) {
    const d = r.domainOf === undefined ? tile : (r.domainOf[tile] as number);
    const has = r.present?.has(d) === true;
    if (has === r.anti) return false;
  }
  return true;
}

function inc(m: Map<number, number>, k: number, d: number): void {
  const v = (m.get(k) ?? 0) + d;
  assert(v >= 0, 'placement count below zero');
  if (v === 0) m.delete(k);
  else m.set(k, v);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
