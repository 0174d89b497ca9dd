/**
 * A domain: one WebAssembly instance with its own linear memory, a CSpace (one CNode), a
 * scheduling context, a memory quota and a fault endpoint. A domain has one thread of control:
 * at most one activation (an entry into one of its exports) is on the stack at any time.
 */
import { Exports, ObjType } from './abi.ts';
import { type Cap, CNode, KObject } from './caps.ts';
import { FAULT_LOG_ENTRIES_MAX, IPC_BUFFER_BYTES } from './limits.ts';
import type { KernelModule } from './module.ts';
import type { Endpoint, MemoryQuota, Notification, Reply, SchedContext } from './objects.ts';
import {
  WA,
  type WasmExports,
  type WasmGlobal,
  type WasmInstance,
  type WasmMemory,
} from './wasm-api.ts';
import { InstrumentedExports } from './wasm-binary.ts';

/** A function exported by a domain. */
export type WasmFn = (...args: unknown[]) => unknown;

/** Asyncify control exports of a preemptible domain. */
export interface AsyncControl {
  readonly startUnwind: WasmFn;
  readonly stopUnwind: WasmFn;
  readonly startRewind: WasmFn;
  readonly stopRewind: WasmFn;
  readonly buffer: number;
  readonly bufferBytes: number;
  readonly softFuel: WasmGlobal;
}

/** The exports the kernel uses, resolved once per instance. */
export interface DomainExports {
  readonly fuel: WasmGlobal;
  /** Fast accessors of the fuel global (wasm exports; cheaper than `fuel.value`). */
  readonly getFuel: () => number;
  readonly setFuel: (units: number) => void;
  readonly fault: WasmGlobal;
  readonly quota: WasmGlobal;
  readonly memory: WasmMemory | undefined;
  readonly start: WasmFn | undefined;
  readonly main: WasmFn | undefined;
  readonly handle: WasmFn | undefined;
  readonly notify: WasmFn | undefined;
  readonly upgrade: WasmFn | undefined;
  readonly saveState: WasmFn | undefined;
  /** Address of the IPC buffer, or -1 when the domain has none (or it is out of bounds). */
  readonly ipcBuffer: number;
  readonly async: AsyncControl | undefined;
  readonly savedGlobals: readonly (readonly [number, WasmGlobal])[];
}

/** What a domain is doing. */
export type DomainState = 'live' | 'faulted' | 'dead';

/** One entry into a domain, kept when it is unwound so it can be rewound later. */
export interface Activation {
  readonly kind: 'main' | 'handle' | 'notify';
  readonly fn: WasmFn;
  readonly args: readonly unknown[];
  reply: Reply | undefined;
}

/** A fault as recorded in a domain's fault log. */
export interface FaultRecord {
  readonly kind: number;
  readonly detail: number;
  readonly message: string;
  readonly atUnits: number;
}

/** Per-domain counters. */
export interface DomainStats {
  fuelUsed: number;
  ipcSent: number;
  ipcReceived: number;
  faults: number;
  activations: number;
  restarts: number;
  preemptions: number;
  upgrades: number;
  rollbacks: number;
}

/** Per-domain telemetry snapshot. */
export interface DomainSnapshot extends DomainStats {
  readonly id: number;
  readonly name: string;
  readonly state: DomainState;
  readonly memoryBytes: number;
  readonly caps: number;
  readonly version: number;
}

/**
 * Last message or reply a domain received (read with `msg_get`). The three 64-bit registers live
 * in a BigInt64Array rather than in `bigint` fields: the IPC fast path stores freshly allocated
 * BigInts (the wasm→JS conversion of `call`'s i64 arguments and of the handler's result) on every
 * call, and storing a young object into a long-lived object's field takes V8's write-barrier slow
 * path (~10 ns per store, measured), while a typed-array store copies 8 bytes and keeps nothing.
 */
export class MessageRegisters {
  info = 0;
  /** badge, mr0, mr1. */
  readonly words = new BigInt64Array(3);

  get badge(): bigint {
    return this.words[0] as bigint;
  }
  set badge(v: bigint) {
    this.words[0] = v;
  }
  get mr0(): bigint {
    return this.words[1] as bigint;
  }
  set mr0(v: bigint) {
    this.words[1] = v;
  }
  get mr1(): bigint {
    return this.words[2] as bigint;
  }
  set mr1(v: bigint) {
    this.words[2] = v;
  }

  /** Copies another domain's registers (shadow mirroring). */
  copyFrom(o: MessageRegisters): void {
    this.info = o.info;
    this.words.set(o.words);
  }
}

/** A WebAssembly domain. */
export class Domain extends KObject {
  readonly type = ObjType.DOMAIN;
  state: DomainState = 'live';
  /** @internal The syscall binding of the current instance (the kernel's; see spawn pool). */
  binding: { dom: Domain | undefined } | undefined;
  /** The kernel that spawned this domain (the IPC fast path checks it instead of a map lookup). */
  owner: object | undefined;
  instance!: WasmInstance;
  ex!: DomainExports;
  version = 1;
  /** An activation is on the JS stack. */
  active = false;
  /** Queued in a ready queue. */
  queued = false;
  /** In the kernel's depleted set (a flag, so the wake-up path needs no Set lookup). */
  depleted = false;
  readySinceUnits = 0;
  pendingMain = false;
  /** An unwound activation waiting to be rewound (preempted or blocked in `call`). */
  suspended: Activation | undefined;
  /** Suspended in `call` until the reply arrives. */
  blocked = false;
  /** The notification this domain is blocked on in `notify_wait`. */
  waitingOn: Notification | undefined;
  /** Value the rewound syscall returns. */
  resumeValue: bigint = 0n;
  rewinding = false;
  unwinding = false;
  /** The activation currently running, if any. */
  current: Activation | undefined;
  /** Set by a syscall that faulted the domain; the activation is treated as faulted even if the
   * module catches the JS exception with exception handling. */
  faultPending: { kind: number; detail: number; message: string } | undefined;
  /** Fuel spent by passive servers during this domain's nested calls in this activation. */
  donatedUnits = 0;
  recvEp: Endpoint | undefined;
  boundNotification: Notification | undefined;
  faultEp: Cap | undefined;
  readonly msg = new MessageRegisters();
  readonly faultLog: FaultRecord[] = [];
  readonly stats: DomainStats = {
    fuelUsed: 0,
    ipcSent: 0,
    ipcReceived: 0,
    faults: 0,
    activations: 0,
    restarts: 0,
    preemptions: 0,
    upgrades: 0,
    rollbacks: 0,
  };
  /** Previous version kept after a hot swap until probation ends (at most two live versions). */
  previous: { module: KernelModule; instance: WasmInstance; ex: DomainExports } | undefined;
  probation = 0;
  /** Set on a shadow domain: its effects are recorded, never performed. */
  shadowOf: Domain | undefined;
  /** Set on a live domain that has a shadow: both sides record effects for comparison. */
  effects: string[] | undefined;
  /** Called after each activation of a live domain that has a shadow (mirrors the input). */
  mirror:
    | ((act: Activation, effectsBefore: number, fuelUsed: number, faulted: boolean) => void)
    | undefined;
  /** Return value of the last completed general-path activation (the shadow comparison in
   * live.ts reads it; fast-path calls, which never involve a shadowed domain, skip the store). */
  lastResult: unknown;
  /** Position of a shadow in its live domain's effect log when replaying call replies. */
  replayIndex = 0;
  readonly cspace: CNode;

  constructor(
    readonly id: number,
    readonly name: string,
    public module: KernelModule,
    readonly sched: SchedContext,
    readonly quota: MemoryQuota,
    readonly memoryBytesMax: number,
    cnodeSlots: number,
  ) {
    super();
    this.cspace = new CNode(cnodeSlots);
  }

  /** Current linear memory size. */
  get memoryBytes(): number {
    return this.ex?.memory?.buffer.byteLength ?? 0;
  }

  /** Records a fault in the bounded log. */
  logFault(rec: FaultRecord): void {
    if (this.faultLog.length >= FAULT_LOG_ENTRIES_MAX) this.faultLog.shift();
    this.faultLog.push(rec);
  }

  snapshot(): DomainSnapshot {
    return {
      id: this.id,
      name: this.name,
      state: this.state,
      memoryBytes: this.memoryBytes,
      caps: this.cspace.count,
      version: this.version,
      ...this.stats,
    };
  }
}

function fn(e: WasmExports, name: string): WasmFn | undefined {
  const v = e[name];
  return typeof v === 'function' ? (v as WasmFn) : undefined;
}

function globalValue(e: WasmExports, name: string): number | undefined {
  const g = e[name];
  return g instanceof WA.Global && typeof g.value === 'number' ? g.value : undefined;
}

/** Resolves the exports the kernel needs from a fresh instance of an instrumented module. */
export function resolveExports(instance: WasmInstance, module: KernelModule): DomainExports {
  const e = instance.exports;
  const g = (name: string): WasmGlobal => e[name] as WasmGlobal;
  const memory =
    e[InstrumentedExports.MEMORY] instanceof WA.Memory
      ? (e[InstrumentedExports.MEMORY] as WasmMemory)
      : undefined;
  const size = memory?.buffer.byteLength ?? 0;
  const ipc = globalValue(e, Exports.IPC_BUFFER);
  const ipcBuffer = ipc !== undefined && ipc >= 0 && ipc + IPC_BUFFER_BYTES <= size ? ipc : -1;
  let async: AsyncControl | undefined;
  if (module.preemptible) {
    const buffer = globalValue(e, Exports.ASYNC_BUFFER) ?? -1;
    const bufferBytes = globalValue(e, Exports.ASYNC_BUFFER_BYTES) ?? 0;
    const ok = buffer >= 0 && bufferBytes >= 64 && buffer + bufferBytes <= size;
    if (ok) {
      async = {
        startUnwind: fn(e, 'asyncify_start_unwind') as WasmFn,
        stopUnwind: fn(e, 'asyncify_stop_unwind') as WasmFn,
        startRewind: fn(e, 'asyncify_start_rewind') as WasmFn,
        stopRewind: fn(e, 'asyncify_stop_rewind') as WasmFn,
        buffer,
        bufferBytes,
        softFuel: g(Exports.SOFT_FUEL),
      };
    }
  }
  return {
    fuel: g(InstrumentedExports.FUEL),
    getFuel: e[InstrumentedExports.FUEL_GET] as () => number,
    setFuel: e[InstrumentedExports.FUEL_SET] as (units: number) => void,
    fault: g(InstrumentedExports.FAULT),
    quota: g(InstrumentedExports.QUOTA),
    memory,
    start: fn(e, InstrumentedExports.START),
    main: fn(e, Exports.MAIN),
    handle: fn(e, Exports.HANDLE),
    notify: fn(e, Exports.NOTIFY),
    upgrade: fn(e, Exports.UPGRADE),
    saveState: fn(e, Exports.SAVE_STATE),
    ipcBuffer,
    async,
    savedGlobals: module.savedGlobals.map(
      (i) => [i, g(InstrumentedExports.globalName(i))] as const,
    ),
  };
}
