/**
 * The controller: desired state (workload specs, placements, drains) in a durable store — the
 * hub's JetStream KV — and a reconciliation loop in the Kubernetes controller mould: observe
 * (pull every pod's inventory), diff against desired state, act (assign, unassign), repeat.
 *
 * Because it observes what tiles actually run, the loop also heals partitions: while a pod is
 * unreachable its placements are kept for a grace period (its tiles keep running them — edge
 * autonomy); after the grace they are rescheduled elsewhere; when the pod returns, instances
 * it still runs that now live elsewhere are stopped, so no workload is duplicated or lost.
 */
import { z } from 'zod';
import type {
  Clock,
  Logger,
  Message,
  Subscription,
  TimerHandle,
  Transport,
} from '../core/index.ts';
import { FabricError, FabricErrorCode } from './errors.ts';
import {
  CONTROL_REQUEST_TIMEOUT_MS,
  POD_UNREACHABLE_GRACE_MS_DEFAULT,
  RECONCILE_ACTIONS_PER_PASS_MAX,
  RECONCILE_INTERVAL_MS_DEFAULT,
  WORKLOADS_MAX,
} from './limits.ts';
import {
  ackSchema,
  type InstanceSpec,
  type Inventory,
  inventorySchema,
  type MemberRecord,
  Subjects,
} from './messages.ts';
import { type Explanation, Scheduler } from './scheduler.ts';
import type { KeyValueStore } from './state-store.ts';
import { decodeJson, encodeJson } from './wire.ts';
import {
  instanceId,
  parseWorkloadSpec,
  type WorkloadSpec,
  workloadSpecSchema,
} from './workload.ts';

/** Options of a {@link Controller}. */
export interface ControllerInit {
  /** The hub this controller serves (control subjects are `genesis.fabric.ctl.<name>.*`). */
  readonly name: string;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Desired state (JetStream KV in the hub's domain). */
  readonly store: KeyValueStore;
  /** Pods to observe (usually the hub agent's known pods). */
  readonly pods: () => readonly string[];
  readonly reconcileMs?: number;
  readonly unreachableGraceMs?: number;
}

interface TileView {
  readonly record: MemberRecord;
  readonly pod: string;
}

interface PodView {
  lastSeenMs: number;
  reachable: boolean;
  inventory: Inventory | undefined;
}

/** A node as `genesis get nodes` shows it. */
export interface NodeSummary {
  readonly name: string;
  readonly pod: string;
  readonly state: string;
  readonly schedulable: boolean;
  readonly cpuMillis: number;
  readonly memoryMb: number;
  readonly cpuFree: number;
  readonly memoryFree: number;
  readonly instances: number;
}

/** A workload as `genesis get workloads` shows it. */
export interface WorkloadSummary {
  readonly name: string;
  readonly replicas: number;
  readonly placed: number;
  readonly running: number;
  readonly pending: number;
  readonly priority: number;
}

const applyRequestSchema = z.strictObject({ specs: z.array(z.unknown()).max(1000) });
const nameRequestSchema = z.strictObject({
  name: z.string().max(160),
  undo: z.boolean().optional(),
});
const getRequestSchema = z.strictObject({ what: z.enum(['nodes', 'workloads', 'pods']) });

/** Counters of the controller. */
export interface ControllerCounters {
  passes: number;
  assigned: number;
  unassigned: number;
  rescheduled: number;
  duplicatesStopped: number;
  preempted: number;
  unschedulable: number;
  assignFailures: number;
}

/** The reconciling controller of one hub. */
export class Controller {
  readonly scheduler = new Scheduler();
  private readonly workloads = new Map<string, WorkloadSpec>();
  /** Desired placements: instance id → tile (mirrors the store's `p.` keys). */
  private readonly placements = new Map<string, string>();
  private readonly drained = new Set<string>();
  private readonly tiles = new Map<string, TileView>();
  private readonly podViews = new Map<string, PodView>();
  private readonly unschedulableWhy = new Map<string, string>();
  private readonly subs: Subscription[] = [];
  private readonly reconcileMs: number;
  private readonly graceMs: number;
  private timer: TimerHandle | undefined;
  private passRunning: Promise<void> | undefined;
  private again = false;
  private running = false;
  readonly counters: ControllerCounters = {
    passes: 0,
    assigned: 0,
    unassigned: 0,
    rescheduled: 0,
    duplicatesStopped: 0,
    preempted: 0,
    unschedulable: 0,
    assignFailures: 0,
  };

  constructor(private readonly init: ControllerInit) {
    this.reconcileMs = init.reconcileMs ?? RECONCILE_INTERVAL_MS_DEFAULT;
    this.graceMs = init.unreachableGraceMs ?? POD_UNREACHABLE_GRACE_MS_DEFAULT;
  }

  /** Loads desired state, serves the control API and starts the loop. */
  async start(): Promise<void> {
    if (this.running) return;
    for (const [k, v] of await this.init.store.entries()) {
      if (k.startsWith('w.')) {
        const spec = decodeJson(v, workloadSpecSchema);
        if (spec !== undefined) this.workloads.set(spec.name, spec);
      } else if (k.startsWith('p.')) this.placements.set(k.slice(2), new TextDecoder().decode(v));
      else if (k.startsWith('d.')) this.drained.add(k.slice(2));
    }
    const t = this.init.transport;
    const serve = (verb: string, fn: (m: Message) => Promise<unknown>): void => {
      this.subs.push(
        t.subscribe(Subjects.control(this.init.name, verb), async (m) => {
          let out: unknown;
          try {
            out = await fn(m);
          } catch (e) {
            out = {
              ok: false,
              error:
                e instanceof FabricError ? `${e.code}: ${e.message}` : String((e as Error).message),
            };
          }
          m.respond(encodeJson(out));
        }),
      );
    };
    serve('apply', (m) => this.onApply(m.data));
    serve('delete', async (m) => this.deleteWorkload(parseRequest(m.data, nameRequestSchema).name));
    serve('get', async (m) => this.get(parseRequest(m.data, getRequestSchema).what));
    serve('explain', async (m) => ({
      ok: true,
      explanation: this.explain(parseRequest(m.data, nameRequestSchema).name),
    }));
    serve('status', async () => ({ ok: true, status: this.status() }));
    serve('drain', async (m) => {
      const r = parseRequest(m.data, nameRequestSchema);
      return this.drain(r.name, r.undo !== true);
    });
    this.running = true;
    this.timer = this.init.clock.setInterval(() => this.kick(), this.reconcileMs);
    this.kick();
  }

  /** Stops the loop and the API; waits for a running pass. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) this.init.clock.clearTimer(this.timer);
    for (const s of this.subs.splice(0)) s.unsubscribe();
    await this.passRunning;
  }

  /** Requests a reconciliation pass now (coalesced with a running one). */
  kick(): void {
    if (!this.running) return;
    if (this.passRunning !== undefined) {
      this.again = true;
      return;
    }
    this.passRunning = this.reconcile()
      .catch((e: unknown) => this.init.logger.warn({ err: String(e) }, 'reconcile pass failed'))
      .finally(() => {
        this.passRunning = undefined;
        if (this.again && this.running) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Resolves after the current pass (if any) and one more complete pass. */
  async settle(): Promise<void> {
    await this.passRunning;
    this.kick();
    await this.passRunning;
  }

  /**
   * Validates and stores specs; resolves once they are durable (acknowledged).
   * @throws {FabricError} FABRIC_SPEC_INVALID
   */
  async apply(specs: readonly WorkloadSpec[]): Promise<string[]> {
    if (this.workloads.size + specs.length > WORKLOADS_MAX)
      throw new FabricError(
        FabricErrorCode.SpecInvalid,
        `more than WORKLOADS_MAX (${WORKLOADS_MAX}) workloads`,
      );
    for (const s of specs) {
      await this.init.store.put(`w.${s.name}`, encodeJson(s));
      this.workloads.set(s.name, s);
    }
    this.kick();
    return specs.map((s) => s.name);
  }

  /** Deletes a workload; its instances are stopped by the next pass. */
  async deleteWorkload(name: string): Promise<{ ok: boolean }> {
    if (!this.workloads.has(name))
      throw new FabricError(FabricErrorCode.UnknownWorkload, `no workload named "${name}"`);
    await this.init.store.delete(`w.${name}`);
    this.workloads.delete(name);
    this.kick();
    return { ok: true };
  }

  /** Drains (or undrains) a tile or every tile under a pod/hub name. */
  async drain(node: string, on: boolean): Promise<{ ok: boolean; tiles: number }> {
    const affected = [...this.tiles.keys()].filter((t) => t === node || t.startsWith(`${node}.`));
    if (affected.length === 0 && !this.podViews.has(node))
      throw new FabricError(
        FabricErrorCode.UnknownNode,
        `no node named "${node}" under ${this.init.name}`,
      );
    if (on) {
      await this.init.store.put(`d.${node}`, encodeJson(true));
      this.drained.add(node);
    } else {
      await this.init.store.delete(`d.${node}`);
      this.drained.delete(node);
    }
    this.kick();
    return { ok: true, tiles: affected.length };
  }

  /** Explains placements of a workload. */
  explain(
    name: string,
  ): Explanation & { pending: readonly string[]; lastFailure: string | undefined } {
    const spec = this.workloads.get(name);
    if (spec === undefined)
      throw new FabricError(FabricErrorCode.UnknownWorkload, `no workload named "${name}"`);
    const placements: Record<string, string> = {};
    const pending: string[] = [];
    for (let r = 0; r < spec.replicas; r++) {
      const id = instanceId(name, r);
      const tile = this.placements.get(id);
      if (tile === undefined) pending.push(id);
      else placements[id] = tile;
    }
    return {
      ...this.scheduler.explain(spec, placements),
      pending,
      lastFailure: this.unschedulableWhy.get(name),
    };
  }

  /** `genesis get`. */
  get(what: 'nodes' | 'workloads' | 'pods'): { ok: true; items: unknown[] } {
    if (what === 'pods') {
      return {
        ok: true,
        items: [...this.podViews].map(([pod, v]) => ({
          pod,
          reachable: v.reachable,
          lastSeenMs: v.lastSeenMs,
          members: v.inventory?.members.length ?? 0,
        })),
      };
    }
    if (what === 'nodes') return { ok: true, items: this.nodeSummaries() };
    return { ok: true, items: this.workloadSummaries() };
  }

  /** Tiles known, with their state and load. */
  nodeSummaries(): NodeSummary[] {
    return [...this.tiles.values()].map((t) => {
      const free = this.scheduler.freeOn(t.record.name);
      return {
        name: t.record.name,
        pod: t.pod,
        state:
          this.podViews.get(t.pod)?.reachable === false ? `${t.record.state}?` : t.record.state,
        schedulable: this.scheduler.isSchedulable(t.record.name),
        cpuMillis: t.record.capacity.cpuMillis,
        memoryMb: t.record.capacity.memoryMb,
        cpuFree: free?.cpuMillis ?? 0,
        memoryFree: free?.memoryMb ?? 0,
        instances: this.scheduler.instancesOn(t.record.name).length,
      };
    });
  }

  /** Workloads with desired, placed and observed-running counts. */
  workloadSummaries(): WorkloadSummary[] {
    const runningOn = new Map<string, string[]>();
    for (const t of this.tiles.values())
      for (const id of t.record.instances)
        runningOn.set(id, [...(runningOn.get(id) ?? []), t.record.name]);
    return [...this.workloads.values()].map((w) => {
      let placed = 0;
      let running = 0;
      for (let r = 0; r < w.replicas; r++) {
        const id = instanceId(w.name, r);
        const tile = this.placements.get(id);
        if (tile !== undefined) placed++;
        if (tile !== undefined && runningOn.get(id)?.includes(tile) === true) running++;
      }
      return {
        name: w.name,
        replicas: w.replicas,
        placed,
        running,
        pending: w.replicas - placed,
        priority: w.priority,
      };
    });
  }

  /** Where each instance of a workload runs, as observed (instance id → tiles running it). */
  observedRunning(workload: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const t of this.tiles.values()) {
      for (const id of t.record.instances) {
        if (!id.startsWith(`${workload}.r`)) continue;
        out.set(id, [...(out.get(id) ?? []), t.record.name]);
      }
    }
    return out;
  }

  /** Desired placements (instance id → tile). */
  desiredPlacements(): ReadonlyMap<string, string> {
    return this.placements;
  }

  /** Counters for status lines. */
  status(): Record<string, number> {
    return {
      workloads: this.workloads.size,
      placements: this.placements.size,
      tiles: this.tiles.size,
      ...this.counters,
    };
  }

  private async onApply(data: Uint8Array): Promise<unknown> {
    const req = parseRequest(data, applyRequestSchema);
    const specs = req.specs.map((s, i) => parseWorkloadSpec(s, `specs[${i}]`));
    return { ok: true, applied: await this.apply(specs) };
  }

  /** One pass: observe, diff, act. */
  private async reconcile(): Promise<void> {
    this.counters.passes++;
    await this.observe();
    const now = this.init.clock.now();
    // 1. Mark schedulability from observed state and drains.
    for (const t of this.tiles.values()) {
      const pod = this.podViews.get(t.pod);
      const ok =
        t.record.state === 'alive' &&
        pod?.reachable === true &&
        pod.inventory?.draining !== true &&
        !this.isDrained(t.record.name);
      this.scheduler.setSchedulable(t.record.name, ok);
    }
    // 2. Drop placements whose tile is lost: dead, gone, drained, or unreachable past grace.
    const lost: string[] = [];
    for (const [id, tile] of this.placements) {
      const view = this.tiles.get(tile);
      const pod = view === undefined ? undefined : this.podViews.get(view.pod);
      const unreachableTooLong =
        pod !== undefined && !pod.reachable && now - pod.lastSeenMs > this.graceMs;
      const workload = this.workloads.get(workloadOf(id));
      const excess = workload === undefined || replicaOf(id) >= workload.replicas;
      if (
        excess ||
        view === undefined ||
        view.record.state === 'dead' ||
        this.isDrained(tile) ||
        unreachableTooLong
      )
        lost.push(id);
    }
    let actions = 0;
    for (const id of lost) {
      const tile = this.placements.get(id) as string;
      this.placements.delete(id);
      this.scheduler.unbind(id);
      await this.init.store.delete(`p.${id}`).catch(() => undefined);
      const w = this.workloads.get(workloadOf(id));
      if (w !== undefined && replicaOf(id) < w.replicas) this.counters.rescheduled++;
      if (this.reachableTile(tile) && this.tiles.get(tile)?.record.state === 'alive')
        await this.unassign(tile, id);
    }
    // 3. Place pending replicas, highest priority first.
    const pending: { id: string; spec: WorkloadSpec }[] = [];
    for (const w of this.workloads.values())
      for (let r = 0; r < w.replicas; r++)
        if (!this.placements.has(instanceId(w.name, r)))
          pending.push({ id: instanceId(w.name, r), spec: w });
    pending.sort((a, b) => b.spec.priority - a.spec.priority);
    const assignedNow = new Set<string>();
    for (const { id, spec } of pending) {
      if (actions++ >= RECONCILE_ACTIONS_PER_PASS_MAX) break;
      const p = this.scheduler.place(id, spec);
      if (p === undefined) {
        this.counters.unschedulable++;
        const ex = this.scheduler.explain(spec);
        this.unschedulableWhy.set(
          spec.name,
          `no feasible tile among ${ex.tilesConsidered}: ${JSON.stringify(ex.rejectedBy)}`,
        );
        continue;
      }
      for (const v of p.victims) {
        const vt = this.placements.get(v);
        this.placements.delete(v);
        await this.init.store.delete(`p.${v}`).catch(() => undefined);
        this.counters.preempted++;
        if (vt !== undefined) await this.unassign(vt, v);
      }
      // Desired state first: once durable, a crash between here and the assign is repaired by
      // the next pass, which re-sends assignments the tile does not report.
      this.placements.set(id, p.tile);
      await this.init.store.put(`p.${id}`, new TextEncoder().encode(p.tile));
      assignedNow.add(id);
      if (!(await this.assign(p.tile, id, spec))) {
        this.placements.delete(id);
        this.scheduler.unbind(id);
        await this.init.store.delete(`p.${id}`).catch(() => undefined);
      }
    }
    // 4. Converge observed with desired: stop duplicates/orphans, re-send missing assignments.
    for (const t of this.tiles.values()) {
      if (!this.reachableTile(t.record.name) || t.record.state === 'dead') continue;
      for (const id of t.record.instances) {
        if (this.placements.get(id) !== t.record.name) {
          this.counters.duplicatesStopped++;
          await this.unassign(t.record.name, id);
        }
      }
    }
    for (const [id, tile] of this.placements) {
      const view = this.tiles.get(tile);
      if (
        assignedNow.has(id) ||
        view === undefined ||
        !this.reachableTile(tile) ||
        view.record.state !== 'alive'
      )
        continue;
      if (!view.record.instances.includes(id)) {
        const spec = this.workloads.get(workloadOf(id));
        if (spec !== undefined) await this.assign(tile, id, spec);
      }
    }
  }

  private isDrained(tile: string): boolean {
    for (const d of this.drained) if (tile === d || tile.startsWith(`${d}.`)) return true;
    return false;
  }

  private reachableTile(tile: string): boolean {
    const v = this.tiles.get(tile);
    return v !== undefined && this.podViews.get(v.pod)?.reachable === true;
  }

  /** Pulls every pod's inventory in parallel and updates the tile views and the scheduler. */
  private async observe(): Promise<void> {
    const pods = new Set(this.init.pods());
    for (const v of this.tiles.values()) pods.add(v.pod);
    const now = this.init.clock.now();
    await Promise.all(
      [...pods].map(async (pod) => {
        let view = this.podViews.get(pod);
        if (view === undefined) {
          view = { lastSeenMs: now, reachable: false, inventory: undefined };
          this.podViews.set(pod, view);
        }
        try {
          const reply = await this.init.transport.request(
            Subjects.inventory(pod),
            new Uint8Array(0),
            { timeoutMs: CONTROL_REQUEST_TIMEOUT_MS },
          );
          const inv = decodeJson(reply.data, inventorySchema);
          if (inv === undefined || inv.pod !== pod) throw new Error('bad inventory');
          view.inventory = inv;
          view.reachable = true;
          view.lastSeenMs = this.init.clock.now();
          for (const m of inv.members) {
            if (!m.name.startsWith(`${pod}.`)) continue;
            this.tiles.set(m.name, { record: m, pod });
            this.scheduler.upsertTile({
              name: m.name,
              pod,
              hub: this.init.name,
              cpuMillis: m.capacity.cpuMillis,
              memoryMb: m.capacity.memoryMb,
              labels: m.labels,
              capabilities: inv.capabilities,
            });
          }
        } catch {
          view.reachable = false;
        }
      }),
    );
    // Bind desired placements the scheduler does not know yet (after a restart).
    for (const [id, tile] of this.placements) {
      if (this.scheduler.placementOf(id) === tile) continue;
      const spec = this.workloads.get(workloadOf(id));
      if (spec !== undefined && this.tiles.has(tile)) this.scheduler.bind(id, spec, tile);
    }
  }

  private async assign(tile: string, id: string, spec: WorkloadSpec): Promise<boolean> {
    const instance: InstanceSpec = {
      id,
      workload: spec.name,
      replica: replicaOf(id),
      module: spec.module,
      cpuMillis: spec.cpuMillis,
      memoryMb: spec.memoryMb,
      capabilities: spec.capabilities,
    };
    try {
      const reply = await this.init.transport.request(
        Subjects.assign(tile),
        encodeJson({ instance }),
        { timeoutMs: CONTROL_REQUEST_TIMEOUT_MS },
      );
      const ack = decodeJson(reply.data, ackSchema);
      if (ack?.ok === true) {
        this.counters.assigned++;
        return true;
      }
    } catch {
      // Unreachable tile: counted; the pass after next retries or reschedules.
    }
    this.counters.assignFailures++;
    return false;
  }

  private async unassign(tile: string, id: string): Promise<void> {
    try {
      await this.init.transport.request(Subjects.unassign(tile), encodeJson({ id }), {
        timeoutMs: CONTROL_REQUEST_TIMEOUT_MS,
      });
      this.counters.unassigned++;
    } catch {
      // The next pass sees the instance again in the inventory and retries.
    }
  }
}

function workloadOf(id: string): string {
  const i = id.lastIndexOf('.r');
  return i < 0 ? id : id.slice(0, i);
}

function replicaOf(id: string): number {
  const i = id.lastIndexOf('.r');
  return i < 0 ? 0 : Number(id.slice(i + 2));
}

function parseRequest<T>(data: Uint8Array, schema: z.ZodType<T>): T {
  const v = decodeJson(data, schema);
  if (v === undefined)
    throw new FabricError(FabricErrorCode.WireMalformed, 'malformed control request');
  return v;
}
