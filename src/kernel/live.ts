/**
 * Live update and shadow execution: hot swap with an upgrade hook and automatic rollback,
 * checkpoint/restore at a quiescent point, and shadow runs that mirror a live domain's inputs
 * into a candidate module whose effects are recorded, never performed.
 */
import { IpcBuffer } from './abi.ts';
import { type Cap, deleteCap, derive } from './caps.ts';
import type { Activation, Domain, DomainExports, WasmFn } from './domain.ts';
import { KernelError, KernelErrorCode } from './errors.ts';
import type { Kernel } from './kernel.ts';
import {
  SCHED_BUDGET_UNITS_DEFAULT,
  SHADOW_RECORDS_MAX,
  UPGRADE_PROBATION_ACTIVATIONS,
  UPGRADE_STATE_BYTES_MAX,
  WASM_PAGE_BYTES,
} from './limits.ts';
import type { KernelModule } from './module.ts';
import type { WasmInstance } from './wasm-api.ts';

function requireQuiescent(dom: Domain): void {
  if (dom.state === 'dead')
    throw new KernelError(KernelErrorCode.DOMAIN_UNKNOWN, `domain ${dom.id} is dead`);
  if (dom.active || dom.suspended !== undefined) {
    throw new KernelError(KernelErrorCode.DOMAIN_BUSY, `domain ${dom.id} is not quiescent`);
  }
}

interface Version {
  readonly module: KernelModule;
  readonly instance: WasmInstance;
  readonly ex: DomainExports;
}

function setVersion(dom: Domain, v: Version): void {
  dom.module = v.module;
  dom.instance = v.instance;
  dom.ex = v.ex;
}

/** Outcome of a successful {@link hotSwap}. */
export interface SwapResult {
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly stateBytes: number;
}

/**
 * Replaces a quiescent domain's module, keeping its identity, CSpace, endpoint binding and
 * queues. The old version may export `genesis_save_state() -> len` (state written to its IPC
 * buffer's data area); the new version must export `genesis_upgrade(fromVersion, len) -> 0`,
 * which finds that state in its own IPC buffer. Any failure restores the old version untouched.
 * After success the old version stays live for {@link UPGRADE_PROBATION_ACTIVATIONS}
 * activations: a fault in that window rolls back automatically (at most two versions live).
 * @throws {KernelError} DOMAIN_BUSY, UPGRADE_FAILED (after rolling back).
 */
export function hotSwap(
  kernel: Kernel,
  dom: Domain,
  next: KernelModule,
  fuelUnits = SCHED_BUDGET_UNITS_DEFAULT,
): SwapResult {
  requireQuiescent(dom);
  const old: Version = { module: dom.module, instance: dom.instance, ex: dom.ex };
  const fail = (why: string, cause?: unknown): never => {
    setVersion(dom, old);
    throw new KernelError(
      KernelErrorCode.UPGRADE_FAILED,
      `upgrade of ${dom.name} rolled back: ${why}`,
      cause === undefined ? {} : { cause },
    );
  };
  let state = new Uint8Array(0);
  if (old.ex.saveState !== undefined) {
    const r = kernel.runHook(dom, old.ex.saveState, [], fuelUnits);
    if (!r.ok) return fail(`genesis_save_state faulted (${r.message})`);
    const len = Number(r.value);
    if (
      !Number.isInteger(len) ||
      len < 0 ||
      len > UPGRADE_STATE_BYTES_MAX ||
      old.ex.ipcBuffer < 0 ||
      old.ex.memory === undefined
    ) {
      return fail(`genesis_save_state returned a bad length ${String(r.value)}`);
    }
    state = new Uint8Array(old.ex.memory.buffer, old.ex.ipcBuffer + IpcBuffer.DATA, len).slice();
  }
  try {
    kernel.instantiate(dom, next);
  } catch (e) {
    return fail('instantiation failed', e);
  }
  const hook = dom.ex.upgrade;
  if (hook === undefined) return fail('new module exports no genesis_upgrade');
  if (state.length > 0) {
    if (dom.ex.ipcBuffer < 0 || dom.ex.memory === undefined)
      return fail('new module has no IPC buffer for the state');
    new Uint8Array(dom.ex.memory.buffer, dom.ex.ipcBuffer + IpcBuffer.DATA, state.length).set(
      state,
    );
  }
  const r = kernel.runHook(dom, hook, [dom.version, state.length], fuelUnits);
  if (!r.ok) return fail(`genesis_upgrade faulted (${r.message})`);
  if (r.value !== 0) return fail(`genesis_upgrade returned ${String(r.value)}`);
  const from = dom.version;
  dom.previous = old;
  dom.version++;
  dom.probation = UPGRADE_PROBATION_ACTIVATIONS;
  dom.stats.upgrades++;
  if (dom.state === 'faulted') dom.state = 'live';
  return { fromVersion: from, toVersion: dom.version, stateBytes: state.length };
}

/** A domain's state at a quiescent point. */
export interface Checkpoint {
  readonly domainId: number;
  readonly version: number;
  readonly module: KernelModule;
  readonly memory: Uint8Array;
  readonly globals: readonly (readonly [number, number | bigint])[];
  /** The capabilities the CSpace held, by slot (identity, not copies: see {@link restore}). */
  readonly slots: readonly (Cap | undefined)[];
}

/**
 * Captures memory, every mutable global and the CSpace of a quiescent domain.
 * @throws {KernelError} DOMAIN_BUSY; BAD_ARGUMENT when the module's code may change state the
 * kernel cannot capture (tables, passive data segments: {@link KernelModule.hiddenState}).
 */
export function checkpoint(dom: Domain): Checkpoint {
  requireQuiescent(dom);
  // A restore instantiates the module afresh: a table or passive segment changed since would
  // silently come back in its initial state. Refuse rather than restore something else.
  if (dom.module.hiddenState !== undefined)
    throw new KernelError(
      KernelErrorCode.BAD_ARGUMENT,
      `cannot checkpoint domain ${dom.id}: ${dom.module.hiddenState}`,
    );
  return {
    domainId: dom.id,
    version: dom.version,
    module: dom.module,
    memory:
      dom.ex.memory === undefined
        ? new Uint8Array(0)
        : new Uint8Array(dom.ex.memory.buffer).slice(),
    globals: dom.ex.savedGlobals.map(([i, g]) => [i, g.value] as const),
    slots: [...dom.cspace.slots],
  };
}

/**
 * Restores a checkpoint into a fresh instance of the checkpoint's module. The CSpace comes back
 * as a subset of what it was: capabilities added since are deleted, capabilities deleted or
 * revoked since stay gone (restoring must never resurrect authority).
 * @throws {KernelError} DOMAIN_BUSY, BAD_ARGUMENT.
 */
export function restore(kernel: Kernel, dom: Domain, cp: Checkpoint): void {
  requireQuiescent(dom);
  if (cp.domainId !== dom.id)
    throw new KernelError(KernelErrorCode.BAD_ARGUMENT, 'checkpoint belongs to another domain');
  kernel.instantiate(dom, cp.module);
  const mem = dom.ex.memory;
  if (mem !== undefined) {
    const pages = (cp.memory.length - mem.buffer.byteLength) / WASM_PAGE_BYTES;
    if (pages > 0) mem.grow(pages);
    new Uint8Array(mem.buffer).set(cp.memory);
  }
  const byIndex = new Map(dom.ex.savedGlobals);
  for (const [i, v] of cp.globals) {
    const g = byIndex.get(i);
    if (g !== undefined) g.value = v;
  }
  const keep = new Set(cp.slots.filter((c): c is Cap => c !== undefined));
  for (const c of dom.cspace.slots) if (c !== undefined && !keep.has(c)) deleteCap(c);
  dom.version = cp.version;
  dom.previous = undefined;
  dom.probation = 0;
  dom.pendingMain = false;
  dom.state = 'live';
}

/** One difference between the live domain and its shadow. */
export interface Divergence {
  readonly activation: number;
  readonly kind: 'result' | 'effects' | 'fault';
  readonly live: string;
  readonly shadow: string;
}

/** What a shadow run found. */
export interface ShadowReport {
  readonly activations: number;
  readonly divergences: readonly Divergence[];
  readonly fuel: { readonly live: number; readonly shadow: number };
  readonly faults: { readonly live: number; readonly shadow: number };
  readonly memoryBytes: { readonly live: number; readonly shadow: number };
  readonly effects: { readonly live: number; readonly shadow: number };
}

/**
 * A candidate module running beside a live domain. Every activation of the live domain (main,
 * message, notification) is replayed into the shadow with the same arguments and message data;
 * the shadow's outbound effects (sends, calls, signals, device writes, cap operations, logs) go
 * to a recorder and are compared with the live domain's.
 */
export class ShadowRun {
  readonly divergences: Divergence[] = [];
  activations = 0;
  private fuelLive = 0;
  private fuelShadow = 0;
  private faultsLive = 0;
  private faultsShadow = 0;
  private effectsLive = 0;
  private effectsShadow = 0;

  constructor(
    private readonly kernel: Kernel,
    readonly live: Domain,
    readonly shadow: Domain,
  ) {}

  /** @internal Mirrors one completed live activation into the shadow. */
  mirror(act: Activation, effectsBefore: number, fuelUsed: number, liveFaulted: boolean): void {
    const live = this.live;
    const sh = this.shadow;
    this.activations++;
    this.fuelLive += fuelUsed;
    if (liveFaulted) this.faultsLive++;
    const liveEffects = (live.effects ?? []).slice(effectsBefore);
    const fn = pickExport(sh, act.kind);
    let shadowResult = 'none';
    const shEffectsBefore = sh.effects?.length ?? 0;
    let shadowFaulted = sh.state !== 'live';
    if (fn !== undefined && !shadowFaulted) {
      copyMessage(live, sh);
      sh.replayIndex = effectsBefore;
      const r = this.kernel.runHook(sh, fn, act.args, Math.max(fuelUsed * 4, 1_000_000));
      this.fuelShadow += r.used;
      if (r.ok) shadowResult = String(r.value);
      else {
        shadowFaulted = true;
        sh.effects?.push(`fault:${r.kind}`);
      }
    }
    if (shadowFaulted) this.faultsShadow++;
    const shEffects = (sh.effects ?? [])
      .slice(shEffectsBefore)
      .filter((e) => !e.startsWith('fault:'));
    const liveOut = liveEffects.filter((e) => !e.startsWith('fault:')).map(stripReply);
    this.effectsLive += liveOut.length;
    this.effectsShadow += shEffects.length;
    const liveResult = liveFaulted ? 'fault' : String(live.lastResult);
    const add = (kind: Divergence['kind'], l: string, s: string): void => {
      if (this.divergences.length < SHADOW_RECORDS_MAX)
        this.divergences.push({ activation: this.activations, kind, live: l, shadow: s });
    };
    if (liveFaulted !== shadowFaulted) add('fault', String(liveFaulted), String(shadowFaulted));
    else if (!liveFaulted && act.kind === 'handle' && liveResult !== shadowResult)
      add('result', liveResult, shadowResult);
    if (liveOut.join('\n') !== shEffects.join('\n'))
      add('effects', liveOut.join('; '), shEffects.join('; '));
    // Each activation is compared on its own, so the effect logs never grow past one activation.
    if (live.effects !== undefined) live.effects.length = 0;
    if (sh.effects !== undefined) sh.effects.length = 0;
  }

  /** The report so far. */
  report(): ShadowReport {
    return {
      activations: this.activations,
      divergences: [...this.divergences],
      fuel: { live: this.fuelLive, shadow: this.fuelShadow },
      faults: { live: this.faultsLive, shadow: this.faultsShadow },
      memoryBytes: { live: this.live.memoryBytes, shadow: this.shadow.memoryBytes },
      effects: { live: this.effectsLive, shadow: this.effectsShadow },
    };
  }

  /** Ends the run: detaches from the live domain and kills the shadow. Returns the report. */
  stop(): ShadowReport {
    const report = this.report();
    this.live.mirror = undefined;
    this.live.effects = undefined;
    this.kernel.kill(this.shadow);
    return report;
  }
}

function stripReply(effect: string): string {
  // A live call's record carries the reply it got; the shadow's record of the same call does not.
  const i = effect.indexOf('=>');
  return i < 0 ? effect : effect.slice(0, i + 2);
}

function pickExport(d: Domain, kind: Activation['kind']): WasmFn | undefined {
  return kind === 'main' ? d.ex.main : kind === 'handle' ? d.ex.handle : d.ex.notify;
}

function copyMessage(from: Domain, to: Domain): void {
  to.msg.copyFrom(from.msg);
  const a = from.ex;
  const b = to.ex;
  if (a.ipcBuffer >= 0 && b.ipcBuffer >= 0 && a.memory !== undefined && b.memory !== undefined) {
    const n = 64 + 1024;
    new Uint8Array(b.memory.buffer, b.ipcBuffer, n).set(
      new Uint8Array(a.memory.buffer, a.ipcBuffer, n),
    );
  }
}

/**
 * Starts a shadow of `live` running `candidate`. The shadow's CSpace mirrors the live one slot
 * for slot (same cptrs) with derived capabilities, so revoking the live domain's authority also
 * revokes the shadow's; the shadow is never scheduled on its own.
 */
export function startShadow(kernel: Kernel, live: Domain, candidate: KernelModule): ShadowRun {
  requireQuiescent(live);
  if (live.mirror !== undefined)
    throw new KernelError(KernelErrorCode.DOMAIN_BUSY, 'domain already has a shadow');
  const { domain: sh } = kernel.spawn(candidate, {
    name: `${live.name}~shadow`,
    memoryBytes: live.memoryBytesMax,
    cnodeSlots: live.cspace.size,
    runMain: false,
    shadowOf: live,
    priority: live.sched.priority,
  });
  live.cspace.slots.forEach((c, slot) => {
    if (c === undefined) return;
    const child = derive(c, c.rights);
    if (child !== undefined)
      sh.cspace.placeAt(child, slot, live.cspace.generations[slot] as number);
  });
  const run = new ShadowRun(kernel, live, sh);
  live.effects = [];
  live.mirror = (act, before, used, faulted) => run.mirror(act, before, used, faulted);
  return run;
}
