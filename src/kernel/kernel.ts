/**
 * The kernel: domains, capability invocation, IPC, notifications, the MCS-style scheduler,
 * faults and the supervisor hooks. Hot swap, shadow execution and checkpoints are in live.ts.
 *
 * Execution model (docs/kernel.md explains the why): a domain has one thread of control and is
 * entered through its exports — `genesis_main` once after spawn, `genesis_handle` per message,
 * `genesis_notify` per notification. A `call` to an idle server takes the fast path: the kernel
 * enters the server's handler directly, on the caller's donated fuel (a passive server in MCS
 * terms), and the handler's return value is the reply. A `call` to a busy server blocks the
 * caller if it was built preemptible (Asyncify unwinds it; the reply rewinds it), otherwise it
 * returns E_WOULD_BLOCK and sends nothing. `send` is asynchronous: it queues the message in
 * priority order and the scheduler delivers it.
 */
import {
  Exports,
  FaultKind,
  Info,
  IpcBuffer,
  LABEL_ERROR_BASE,
  LABEL_FAULT,
  LABEL_KERNEL_MIN,
  ObjType,
  type ObjTypeValue,
  Rights,
  Status,
} from './abi.ts';
import {
  type Cap,
  deleteCap,
  derive,
  type KObject,
  moveCap,
  originalCap,
  revokeCap,
} from './caps.ts';
import {
  type Activation,
  Domain,
  type DomainExports,
  type DomainSnapshot,
  resolveExports,
  type WasmFn,
} from './domain.ts';
import { KernelAssertionError, KernelError, KernelErrorCode, kassert } from './errors.ts';
import {
  CALL_DEPTH_MAX,
  CNODE_SLOTS_DEFAULT,
  DEBUG_LOG_BYTES_MAX,
  DOMAINS_LIVE_MAX_DEFAULT,
  FUEL_SLICE_UNITS_MAX,
  FUEL_START_UNITS,
  IPC_CAPS_MAX,
  IPC_DATA_BYTES_MAX,
  MEMORY_QUOTA_BYTES_DEFAULT,
  MEMORY_QUOTA_BYTES_MAX,
  NOTIFY_WAITERS_MAX,
  SCHED_ACTIVATIONS_PER_RUN_DEFAULT,
  SCHED_BUDGET_UNITS_DEFAULT,
  SCHED_LATENCY_BUCKETS_UNITS,
  SCHED_PERIOD_UNITS_DEFAULT,
  SCHED_PRIORITIES,
  SPAWN_POOL_INSTANCES_MAX,
  SPAWN_POOL_MODULE_INSTANCES_MAX,
  WASM_PAGE_BYTES,
} from './limits.ts';
import type { KernelModule } from './module.ts';
import {
  Device,
  Endpoint,
  type HostDevice,
  Irq,
  MemoryQuota,
  type Message,
  Notification,
  Reply,
  type ReplySink,
  SchedContext,
} from './objects.ts';
import { WA, type WasmGlobal, type WasmInstance, type WasmMemory } from './wasm-api.ts';

/** One traced event (`genesis kernel run --trace`). */
export type TraceEvent =
  | {
      readonly t: 'syscall';
      readonly domain: number;
      readonly name: string;
      readonly args: readonly unknown[];
      readonly result: unknown;
    }
  | {
      readonly t: 'fault';
      readonly domain: number;
      readonly kind: number;
      readonly detail: number;
      readonly message: string;
    }
  | {
      readonly t: 'activation';
      readonly domain: number;
      readonly kind: string;
      readonly fuelUsed: number;
    };

/** Options of a {@link Kernel}. */
export interface KernelOptions {
  /** Bound on live domains (default {@link DOMAINS_LIVE_MAX_DEFAULT}). */
  readonly domainsMax?: number;
  /** Bytes of the root MemoryQuota (default: domainsMax × the default domain quota). */
  readonly memoryBytes?: number;
  /** Fuel per activation slice for preemptible domains. */
  readonly timesliceUnits?: number;
  /** Receives trace events; undefined disables tracing (and its cost). */
  readonly trace?: (event: TraceEvent) => void;
  /** Receives `debug_log` output. */
  readonly log?: (domain: Domain, text: string) => void;
}

/** Options of {@link Kernel.spawn}. */
export interface SpawnOptions {
  readonly name?: string;
  /** Linear memory the domain may grow into (retyped from `quota`). */
  readonly memoryBytes?: number;
  /** Quota to retype from (default: the kernel's root quota). */
  readonly quota?: MemoryQuota;
  readonly priority?: number;
  readonly budgetUnits?: number;
  readonly periodUnits?: number;
  readonly cnodeSlots?: number;
  /** A capability to an endpoint (Write) where this domain's faults are sent. */
  readonly faultEndpoint?: Cap;
  /** Capabilities copied into the new domain's CSpace, in order (their cptrs are returned). */
  readonly caps?: readonly Cap[];
  /** Kernel-side restart policy used when no fault endpoint is set. */
  readonly restart?: { readonly max: number };
  /** Run `genesis_main` (default true when exported). */
  readonly runMain?: boolean;
  /** Makes the new domain a shadow of this live domain (see live.ts): effects are recorded only. */
  readonly shadowOf?: Domain;
}

/** Result of a host-side {@link Kernel.call}. */
export interface CallResult {
  readonly label: number;
  readonly info: number;
  readonly mr0: bigint;
  readonly mr1: bigint;
  readonly data: Uint8Array | undefined;
}

/** Kernel-wide counters (no metrics library inside the TCB; the CLI maps these to prom-client). */
export interface KernelStats {
  domainsLive: number;
  domainsSpawned: number;
  objectsLive: number;
  capsLive: number;
  faults: number;
  activations: number;
  ipcMessages: number;
  ipcFastpath: number;
  /** Spawns (and restarts) served by a pooled instance instead of a new one. */
  spawnPoolHits: number;
  preemptions: number;
  nowUnits: number;
  /** Scheduling latency histogram: counts per bucket of {@link SCHED_LATENCY_BUCKETS_UNITS} plus +Inf. */
  schedLatencyBuckets: number[];
  schedLatencySumUnits: number;
}

/** Captures a fast-path reply. */
class CaptureSink {
  info = 0;
  mr0 = 0n;
  mr1 = 0n;
  data: Uint8Array | undefined;

  deliver(info: number, mr0: bigint, mr1: bigint, data: Uint8Array | undefined): void {
    this.info = info;
    this.mr0 = mr0;
    this.mr1 = mr1;
    this.data = data;
  }
}

/**
 * The activation record of a fast-path call (seL4's fastpath): one per nesting depth, reused
 * for every call at that depth, so the common call allocates no Activation, Reply, Message or
 * args array. It is also the reply sink: the server's return value (or `reply`) lands in its
 * fields. A Reply object is made lazily, only when the server uses `reply`/`reply_save`.
 */
class FastFrame implements Activation, ReplySink {
  readonly kind = 'handle' as const;
  fn: WasmFn = noop;
  readonly args: readonly unknown[] = [];
  /** Created on demand by {@link Kernel} `currentReply` (explicit `reply` / `reply_save`). */
  reply: Reply | undefined;
  /** The last Reply made for this call, kept after `reply_save` so the fast path can close it. */
  lazy: Reply | undefined;
  saved = false;
  answered = false;
  info = 0;
  mr0 = 0n;
  mr1 = 0n;
  data: Uint8Array | undefined;

  reset(): void {
    this.reply = undefined;
    this.lazy = undefined;
    this.saved = false;
    this.answered = false;
    this.data = undefined;
  }

  deliver(info: number, mr0: bigint, mr1: bigint, data: Uint8Array | undefined): void {
    if (this.answered) return;
    this.answered = true;
    this.info = info;
    this.mr0 = mr0;
    this.mr1 = mr1;
    this.data = data;
  }
}

function noop(): void {}

/** `current` of a domain running a notification handler on the lean path (it has no reply and
 * is never unwound, so one shared record serves every such activation). */
const NOTIFY_ACTIVATION: Activation = { kind: 'notify', fn: noop, args: [], reply: undefined };

/** Which domain an instance's syscall imports act for (repointed when an instance is reused). */
class SyscallBinding {
  constructor(public dom: Domain | undefined) {}
}

/** An instance ready to be handed to a new domain. */
interface PooledInstance {
  readonly instance: WasmInstance;
  readonly ex: DomainExports;
  readonly binding: SyscallBinding;
}

/** Thrown through wasm frames by a syscall that faults its caller. */
class DomainFault extends Error {
  constructor(
    readonly kind: number,
    readonly detail: number,
  ) {
    super(`domain fault ${kind}`);
  }
}

const ERROR_REPLY = (status: number): number => Info.make(LABEL_ERROR_BASE - status);
/** Hard fuel given to a preemptible domain per unit of soft fuel (Asyncify code is larger and
 * both counters run), plus a constant for the unwind path itself. */
const HARD_FUEL_FACTOR = 32;
const HARD_FUEL_SLACK_UNITS = 1_000_000;
const PRIORITY_WORDS = SCHED_PRIORITIES / 32;
/** Tracked objects below which dead ones are not swept (see Kernel.sweep). */
const SWEEP_OBJECTS_MIN = 1024;
/** Rights the IPC fast path requires on the endpoint cap (with only Grant, the general path). */
const FAST_CALL_RIGHTS = Rights.WRITE | Rights.GRANT_REPLY;

/** The capability microkernel. */
export class Kernel {
  readonly domains = new Map<number, Domain>();
  readonly rootQuota: MemoryQuota;
  readonly stats: KernelStats;
  private readonly domainsMax: number;
  private readonly timeslice: number;
  private readonly objects = new Set<KObject>();
  private readonly ready: Domain[][] = Array.from({ length: SCHED_PRIORITIES }, () => []);
  private readonly readyBits = new Uint32Array(PRIORITY_WORDS);
  private readonly depleted = new Set<Domain>();
  private readonly irqs = new Map<number, Irq>();
  private nextId = 1;
  private depth = 0;
  /** Spawn pool: reset instances per module (see {@link recycle}). */
  private readonly pools = new Map<KernelModule, PooledInstance[]>();
  private pooledCount = 0;
  private sweepAt = SWEEP_OBJECTS_MIN;
  /** Fast-path activation records, one per nesting depth (reused; see {@link FastFrame}). */
  private readonly frames: FastFrame[] = [];
  private readonly tracing: boolean;
  private readonly restartPolicies = new Map<number, { max: number; used: number }>();

  constructor(readonly options: KernelOptions = {}) {
    this.domainsMax = options.domainsMax ?? DOMAINS_LIVE_MAX_DEFAULT;
    this.tracing = options.trace !== undefined;
    this.timeslice = Math.min(options.timesliceUnits ?? 1_000_000, FUEL_SLICE_UNITS_MAX);
    this.rootQuota = this.track(
      new MemoryQuota(options.memoryBytes ?? this.domainsMax * MEMORY_QUOTA_BYTES_DEFAULT),
    );
    this.rootQuota.capCount++; // the kernel holds the root quota for as long as it lives
    this.stats = {
      domainsLive: 0,
      domainsSpawned: 0,
      objectsLive: 0,
      capsLive: 0,
      faults: 0,
      activations: 0,
      ipcMessages: 0,
      ipcFastpath: 0,
      spawnPoolHits: 0,
      preemptions: 0,
      nowUnits: 0,
      schedLatencyBuckets: new Array<number>(SCHED_LATENCY_BUCKETS_UNITS.length + 1).fill(0),
      schedLatencySumUnits: 0,
    };
  }

  private track<T extends KObject>(obj: T): T {
    this.objects.add(obj);
    return obj;
  }

  // ---------------------------------------------------------------- object creation (host side)

  /** Creates an endpoint and returns its original capability (all rights). */
  createEndpoint(): Cap {
    const ep = this.track(new Endpoint());
    ep.onMessage = () => this.wakeReceiver(ep);
    return originalCap(ep, Rights.ALL);
  }

  /** Creates a notification and returns its original capability. */
  createNotification(): Cap {
    const n = this.track(new Notification());
    n.wake = (bits) => this.wakeWaiter(n, bits);
    n.onDead = () => {
      // Waiters of a dead notification resume with E_DEAD.
      while (this.wakeWaiter(n, BigInt(Status.E_DEAD))) {}
    };
    n.onSignal = () => {
      // `bound` is always a Domain; the owner check replaces a map lookup on the signal path.
      const d = n.bound as Domain | undefined;
      if (d !== undefined && d.owner === this && d.state !== 'dead') this.makeReady(d);
    };
    return originalCap(n, Rights.ALL);
  }

  /** Creates a child memory quota retyped from `parent` (default: the root quota). */
  createQuota(bytes: number, parent: MemoryQuota = this.rootQuota): Cap {
    checkBytes(bytes);
    parent.reserve(bytes);
    return originalCap(this.track(new MemoryQuota(bytes)), Rights.ALL);
  }

  /** Registers a host device and returns a Device capability. */
  createDevice(host: HostDevice): Cap {
    return originalCap(this.track(new Device(host)), Rights.ALL);
  }

  /** Creates the IRQ handler for a line and returns its capability. */
  createIrq(line: number): Cap {
    if (!Number.isInteger(line) || line < 0 || line >= 256 || this.irqs.has(line)) {
      throw new KernelError(KernelErrorCode.BAD_ARGUMENT, `IRQ line ${line} is invalid or taken`);
    }
    const irq = this.track(new Irq(line));
    this.irqs.set(line, irq);
    return originalCap(irq, Rights.ALL);
  }

  /** The host raises an interrupt line (the HAL calls this from its device interface). */
  raiseIrq(line: number): boolean {
    const irq = this.irqs.get(line);
    if (irq === undefined || irq.dead) return false;
    irq.raise();
    return true;
  }

  /** Derives a capability (host side; masks rights, optional badge). */
  mint(cap: Cap, rights: number, badge?: bigint): Cap {
    if (!cap.live) throw new KernelError(KernelErrorCode.CAP_INVALID, 'capability was deleted');
    const c = derive(cap, rights, badge);
    if (c === undefined)
      throw new KernelError(KernelErrorCode.CAP_INVALID, 'capability is already badged');
    return c;
  }

  /** Revokes every capability derived from `cap`; returns how many were deleted. */
  revoke(cap: Cap): number {
    const n = revokeCap(cap);
    this.sweep();
    return n;
  }

  /** Deletes a capability. */
  delete(cap: Cap): void {
    deleteCap(cap);
    this.sweep();
  }

  /**
   * Drops dead objects from the tracking set. Amortised: a full pass runs only once the set has
   * doubled since the last one, so a kill or a cap delete costs O(1) rather than O(objects)
   * (dead objects are skipped by {@link snapshot} until swept).
   */
  private sweep(): void {
    if (this.objects.size < this.sweepAt) return;
    for (const o of this.objects) if (o.dead) this.objects.delete(o);
    this.sweepAt = Math.max(SWEEP_OBJECTS_MIN, 2 * this.objects.size);
  }

  // ---------------------------------------------------------------- domains

  /**
   * Spawns a domain from a loaded module: retypes memory from a quota, instantiates, runs the
   * start function on a bounded fuel budget and queues `genesis_main`.
   * @throws {KernelError} DOMAINS_EXHAUSTED, QUOTA_EXCEEDED, SPAWN_FAILED.
   */
  spawn(
    module: KernelModule,
    opts: SpawnOptions = {},
  ): { domain: Domain; cap: Cap; cptrs: number[] } {
    if (this.stats.domainsLive >= this.domainsMax) {
      throw new KernelError(
        KernelErrorCode.DOMAINS_EXHAUSTED,
        `live domain bound ${this.domainsMax} reached`,
        {
          details: { limit: this.domainsMax },
        },
      );
    }
    const memoryBytes = opts.memoryBytes ?? MEMORY_QUOTA_BYTES_DEFAULT;
    checkBytes(memoryBytes);
    if (module.initialMemoryBytes > memoryBytes) {
      throw new KernelError(
        KernelErrorCode.QUOTA_EXCEEDED,
        'module needs more initial memory than its quota',
        {
          details: { initial: module.initialMemoryBytes, quota: memoryBytes },
        },
      );
    }
    const quota = opts.quota ?? this.rootQuota;
    quota.reserve(memoryBytes);
    const sched = this.track(
      new SchedContext(
        opts.budgetUnits ?? SCHED_BUDGET_UNITS_DEFAULT,
        opts.periodUnits ?? Math.max(opts.budgetUnits ?? 0, SCHED_PERIOD_UNITS_DEFAULT),
        opts.priority ?? 100,
      ),
    );
    sched.periodStart = this.stats.nowUnits;
    const id = this.nextId++;
    const dom = new Domain(
      id,
      opts.name ?? `${module.name}#${id}`,
      module,
      sched,
      quota,
      memoryBytes,
      opts.cnodeSlots ?? CNODE_SLOTS_DEFAULT,
    );
    if (opts.shadowOf !== undefined) {
      dom.shadowOf = opts.shadowOf;
      dom.effects = [];
    }
    try {
      this.instantiate(dom, module);
    } catch (e) {
      quota.unreserve(memoryBytes);
      throw e;
    }
    this.track(dom);
    dom.owner = this;
    this.domains.set(id, dom);
    this.stats.domainsLive++;
    this.stats.domainsSpawned++;
    const cap = originalCap(dom, Rights.ALL);
    if (opts.faultEndpoint !== undefined) dom.faultEp = this.mint(opts.faultEndpoint, Rights.WRITE);
    if (opts.restart !== undefined)
      this.restartPolicies.set(id, { max: opts.restart.max, used: 0 });
    const cptrs: number[] = [];
    for (const c of opts.caps ?? []) {
      const child = this.mint(c, c.rights);
      const cptr = dom.cspace.insert(child);
      if (cptr < 0) {
        deleteCap(child);
        throw new KernelError(
          KernelErrorCode.CNODE_FULL,
          'CNode full while installing initial caps',
        );
      }
      cptrs.push(cptr);
    }
    if (opts.runMain !== false && dom.ex.main !== undefined) {
      dom.pendingMain = true;
      this.makeReady(dom);
    }
    return { domain: dom, cap, cptrs };
  }

  /** A fresh instance of `module`, its exports resolved; captures the module's pristine state
   * (memory image, mutable globals) the first time, for recycling. Throws SPAWN_FAILED. */
  private freshInstance(module: KernelModule, dom: Domain | undefined): PooledInstance {
    const binding = new SyscallBinding(dom);
    let instance: WasmInstance;
    try {
      instance = new WA.Instance(module.module, { genesis: this.syscalls(binding) });
    } catch (e) {
      throw new KernelError(KernelErrorCode.SPAWN_FAILED, `instantiation failed: ${String(e)}`, {
        cause: e,
      });
    }
    const ex = resolveExports(instance, module);
    if (module.poolBlocker === undefined && module.pristine === undefined) {
      // The start function has not run (the instrumenter turned it into an export), so this is
      // exactly what instantiation produces: zeros, active data segments, global initialisers.
      try {
        module.pristine = {
          memory: ex.memory === undefined ? undefined : new Uint8Array(ex.memory.buffer).slice(),
          globals: ex.savedGlobals.map(([, g]) => g.value),
        };
      } catch {
        // A global JS cannot read (v128): leave the module unpooled.
      }
    }
    return { instance, ex, binding };
  }

  /** Instantiates `module` for `dom` (from the spawn pool when it can) and runs its start
   * function on a bounded budget; throws SPAWN_FAILED. */
  instantiate(dom: Domain, module: KernelModule): void {
    const pool = this.pools.get(module);
    let p = pool?.pop();
    if (p !== undefined) {
      this.pooledCount--;
      this.stats.spawnPoolHits++;
      p.binding.dom = dom;
    } else {
      // Pooled instances hold wasm memories too: make room so live + pooled stays in bound.
      if (this.stats.domainsLive + this.pooledCount >= this.domainsMax) this.evictPooled();
      p = this.freshInstance(module, dom);
    }
    const { instance, ex } = p;
    ex.quota.value = Math.floor(dom.memoryBytesMax / WASM_PAGE_BYTES);
    dom.instance = instance;
    dom.ex = ex;
    dom.module = module;
    dom.binding = p.binding;
    if (ex.start !== undefined) {
      ex.setFuel(FUEL_START_UNITS);
      const prevActive = dom.active;
      dom.active = true;
      try {
        ex.start();
      } catch (e) {
        const kind = (ex.fault.value as number) || FaultKind.TRAP;
        throw new KernelError(
          KernelErrorCode.SPAWN_FAILED,
          `start function faulted (kind ${kind})`,
          { cause: e },
        );
      } finally {
        dom.active = prevActive;
      }
      if (dom.faultPending !== undefined) {
        dom.faultPending = undefined;
        throw new KernelError(
          KernelErrorCode.SPAWN_FAILED,
          'start function made a faulting syscall',
        );
      }
    }
  }

  /** Kills a domain: its memory is released and it never runs again. Its caps are deleted. */
  kill(dom: Domain): void {
    if (dom.state === 'dead') return;
    dom.state = 'dead';
    this.domains.delete(dom.id);
    this.depleted.delete(dom);
    dom.depleted = false;
    this.stats.domainsLive--;
    // The SchedContext has no capability (it never dies by itself): it goes with the domain.
    this.objects.delete(dom.sched);
    dom.quota.unreserve(dom.memoryBytesMax);
    for (const c of dom.cspace.slots) if (c !== undefined) deleteCap(c);
    if (dom.faultEp !== undefined) deleteCap(dom.faultEp);
    dom.current?.reply?.resolve(ERROR_REPLY(Status.E_DEAD), 0n, 0n);
    dom.suspended?.reply?.resolve(ERROR_REPLY(Status.E_DEAD), 0n, 0n);
    if (dom.recvEp !== undefined) dom.recvEp.receiver = undefined;
    this.recycle(dom);
    this.sweep();
  }

  /**
   * Pre-instantiates up to `count` instances of `module` into the spawn pool (call it in idle
   * time), bounded by {@link SPAWN_POOL_INSTANCES_MAX}, {@link SPAWN_POOL_MODULE_INSTANCES_MAX}
   * and the live-domain bound. Returns how many were added (0 for modules that cannot be
   * recycled, see `KernelModule.poolBlocker`).
   */
  prewarm(module: KernelModule, count: number): number {
    if (module.poolBlocker !== undefined) return 0;
    let added = 0;
    while (added < count && this.poolRoom(module)) {
      this.poolPush(module, this.freshInstance(module, undefined));
      added++;
    }
    return added;
  }

  /** Instances currently pooled for `module` (all modules when omitted). */
  pooled(module?: KernelModule): number {
    return module === undefined ? this.pooledCount : (this.pools.get(module)?.length ?? 0);
  }

  /** Drops one pooled instance (of the module with the most), releasing its memory to GC. */
  private evictPooled(): void {
    let victim: PooledInstance[] | undefined;
    for (const pool of this.pools.values())
      if (victim === undefined || pool.length > victim.length) victim = pool;
    if (victim !== undefined && victim.pop() !== undefined) this.pooledCount--;
  }

  private poolRoom(module: KernelModule): boolean {
    return (
      this.pooledCount < SPAWN_POOL_INSTANCES_MAX &&
      (this.pools.get(module)?.length ?? 0) < SPAWN_POOL_MODULE_INSTANCES_MAX &&
      this.stats.domainsLive + this.pooledCount < this.domainsMax
    );
  }

  private poolPush(module: KernelModule, p: PooledInstance): void {
    let pool = this.pools.get(module);
    if (pool === undefined) {
      pool = [];
      this.pools.set(module, pool);
    }
    pool.push(p);
    this.pooledCount++;
  }

  /**
   * Returns a dead domain's instance to the spawn pool, reset to its pristine state (wasmtime's
   * pooling allocator resets a slot the same way): linear memory rewritten from the initial
   * image (zeros + data segments; an instance whose memory grew is dropped instead), every
   * mutable global (all exported by the instrumenter) and the kernel's fuel, fault and quota
   * globals restored. Tables and passive data segments cannot be reset from JS, which is why
   * only modules that cannot change them are pooled (module.ts `poolBlocker`). The start
   * function runs again when the instance is handed out, as for a fresh spawn. The reset
   * happens here, at kill, so a dead domain's data does not linger in a pooled instance.
   */
  private recycle(dom: Domain): void {
    const module = dom.module;
    const pristine = module.pristine;
    const binding = dom.binding;
    if (
      pristine === undefined ||
      module.poolBlocker !== undefined ||
      binding === undefined ||
      dom.active ||
      dom.module !== module ||
      !this.poolRoom(module)
    )
      return;
    const ex = dom.ex;
    if (pristine.memory !== undefined) {
      const mem = ex.memory;
      if (mem === undefined || mem.buffer.byteLength !== pristine.memory.length) return;
      new Uint8Array(mem.buffer).set(pristine.memory);
    }
    const globals = ex.savedGlobals;
    for (let i = 0; i < globals.length; i++)
      (globals[i] as readonly [number, WasmGlobal])[1].value = pristine.globals[i] as number;
    ex.fault.value = 0;
    ex.quota.value = 0;
    ex.setFuel(0);
    binding.dom = undefined;
    dom.binding = undefined;
    this.poolPush(module, { instance: dom.instance, ex, binding });
  }

  /** Restarts a domain from its module with fresh memory, keeping identity, CSpace and bindings. */
  restart(dom: Domain): void {
    if (dom.state === 'dead')
      throw new KernelError(KernelErrorCode.DOMAIN_UNKNOWN, 'domain is dead');
    if (dom.active) throw new KernelError(KernelErrorCode.DOMAIN_BUSY, 'domain is running');
    dom.suspended?.reply?.resolve(ERROR_REPLY(Status.E_SERVER_FAULT), 0n, 0n);
    dom.suspended = undefined;
    dom.blocked = false;
    dom.waitingOn = undefined;
    dom.rewinding = false;
    dom.unwinding = false;
    dom.faultPending = undefined;
    // The old instance is reset into the pool (when its module allows) and, LIFO, usually
    // handed straight back: a restart costs a reset instead of a new instance.
    this.recycle(dom);
    this.instantiate(dom, dom.module);
    dom.state = 'live';
    dom.stats.restarts++;
    if (dom.ex.main !== undefined) dom.pendingMain = true;
    this.makeReady(dom);
  }

  /** Binds `dom` as the receiver of the endpoint named by `cap` (host side). */
  bindReceiver(dom: Domain, cap: Cap): void {
    if (!cap.live || !(cap.obj instanceof Endpoint) || !cap.has(Rights.READ)) {
      throw new KernelError(KernelErrorCode.CAP_INVALID, 'need an endpoint cap with Read');
    }
    if (dom.ex.handle === undefined) {
      throw new KernelError(KernelErrorCode.BAD_ARGUMENT, `domain exports no ${Exports.HANDLE}`);
    }
    this.bindEp(dom, cap.obj);
  }

  private bindEp(dom: Domain, ep: Endpoint): void {
    if (dom.recvEp !== undefined && dom.recvEp !== ep) dom.recvEp.receiver = undefined;
    dom.recvEp = ep;
    ep.receiver = dom;
    this.makeReady(dom);
  }

  /** Binds a notification to `dom` so `genesis_notify` runs when it is signalled (host side). */
  bindNotification(dom: Domain, cap: Cap): void {
    if (!cap.live || !(cap.obj instanceof Notification) || !cap.has(Rights.READ)) {
      throw new KernelError(KernelErrorCode.CAP_INVALID, 'need a notification cap with Read');
    }
    cap.obj.bound = dom;
    dom.boundNotification = cap.obj;
    this.makeReady(dom);
  }

  /** Signals a notification from the host. */
  signal(cap: Cap): void {
    if (!cap.live || !(cap.obj instanceof Notification) || !cap.has(Rights.WRITE)) {
      throw new KernelError(KernelErrorCode.CAP_INVALID, 'need a notification cap with Write');
    }
    cap.obj.signal(cap.badge);
  }

  /** Sends a message from the host (queued, delivered by the scheduler). Returns a Status. */
  send(cap: Cap, label: number, mr0 = 0n, mr1 = 0n, priority = SCHED_PRIORITIES - 1): number {
    if (!cap.live || !(cap.obj instanceof Endpoint) || !cap.has(Rights.WRITE)) {
      throw new KernelError(KernelErrorCode.CAP_INVALID, 'need an endpoint cap with Write');
    }
    this.stats.ipcMessages++;
    return cap.obj.enqueue({
      badge: cap.badge,
      info: Info.make(label),
      mr0,
      mr1,
      data: undefined,
      caps: [],
      priority,
      reply: undefined,
    });
  }

  /**
   * Calls an endpoint from the host. The server must be idle (fast path); the call runs on
   * `fuelUnits` of host-donated fuel.
   * @throws {KernelError} DOMAIN_BUSY when the server cannot take the call now.
   */
  call(
    cap: Cap,
    label: number,
    mr0 = 0n,
    mr1 = 0n,
    fuelUnits = SCHED_BUDGET_UNITS_DEFAULT,
  ): CallResult {
    if (!cap.live || !(cap.obj instanceof Endpoint) || !cap.has(Rights.WRITE)) {
      throw new KernelError(KernelErrorCode.CAP_INVALID, 'need an endpoint cap with Write');
    }
    const server = this.serverFor(cap.obj);
    if (server === undefined)
      throw new KernelError(KernelErrorCode.DOMAIN_BUSY, 'no idle receiver on the endpoint');
    const out = this.fastpath(
      server,
      undefined,
      {
        badge: cap.badge,
        info: Info.make(label),
        mr0,
        mr1,
        data: undefined,
        caps: [],
        priority: SCHED_PRIORITIES - 1,
        reply: undefined,
      },
      fuelUnits,
    );
    return {
      label: Info.label(out.info),
      info: out.info,
      mr0: out.mr0,
      mr1: out.mr1,
      data: out.data,
    };
  }

  // ---------------------------------------------------------------- scheduler

  private makeReady(dom: Domain): void {
    if (dom.queued || dom.depleted || !this.hasWork(dom)) return;
    const p = dom.sched.priority;
    this.ready[p]?.push(dom);
    this.readyBits[p >>> 5] = (this.readyBits[p >>> 5] as number) | (1 << (p & 31));
    dom.queued = true;
    dom.readySinceUnits = this.stats.nowUnits;
  }

  private hasWork(dom: Domain): boolean {
    if (dom.state !== 'live' || dom.active || dom.shadowOf !== undefined) return false;
    if (dom.suspended !== undefined) return !dom.blocked;
    return (
      dom.pendingMain ||
      (dom.recvEp !== undefined && dom.recvEp.queue.length > 0 && dom.ex.handle !== undefined) ||
      (dom.boundNotification?.set === true && dom.ex.notify !== undefined)
    );
  }

  private wakeReceiver(ep: Endpoint): void {
    const d = ep.receiver === undefined ? undefined : this.domains.get(ep.receiver.id);
    if (d !== undefined) this.makeReady(d);
  }

  private popReady(): Domain | undefined {
    for (let w = PRIORITY_WORDS - 1; w >= 0; w--) {
      const bits = this.readyBits[w] as number;
      if (bits === 0) continue;
      const p = w * 32 + 31 - Math.clz32(bits);
      const q = this.ready[p] as Domain[];
      const d = q.shift();
      if (q.length === 0) this.readyBits[w] = bits & ~(1 << (p & 31));
      if (d !== undefined) {
        d.queued = false;
        return d;
      }
    }
    return undefined;
  }

  /**
   * Runs up to `maxActivations` activations, highest priority first, round-robin within a
   * priority, each bounded by fuel. Returns the number run (0 when nothing is runnable).
   */
  run(maxActivations = SCHED_ACTIVATIONS_PER_RUN_DEFAULT): number {
    kassert(this.depth === 0, 'run() re-entered from a syscall');
    let n = 0;
    while (n < maxActivations) {
      this.releaseDepleted();
      const dom = this.popReady();
      if (dom === undefined) {
        if (!this.idleAdvance()) break;
        continue;
      }
      if (!this.hasWork(dom)) continue;
      if (!dom.sched.refill(this.stats.nowUnits)) {
        this.depleted.add(dom);
        dom.depleted = true;
        continue;
      }
      this.dispatch(dom);
      n++;
      this.makeReady(dom);
    }
    return n;
  }

  private releaseDepleted(): void {
    if (this.depleted.size === 0) return;
    for (const d of this.depleted) {
      if (d.state !== 'live') {
        this.depleted.delete(d);
        d.depleted = false;
      } else if (d.sched.refill(this.stats.nowUnits)) {
        this.depleted.delete(d);
        d.depleted = false;
        this.makeReady(d);
      }
    }
  }

  /** With nothing ready, jumps kernel time to the next budget release. */
  private idleAdvance(): boolean {
    let next = Number.POSITIVE_INFINITY;
    for (const d of this.depleted) next = Math.min(next, d.sched.nextRelease());
    if (!Number.isFinite(next)) return false;
    this.stats.nowUnits = Math.max(this.stats.nowUnits, next);
    return true;
  }

  private recordLatency(units: number): void {
    let i = 0;
    while (
      i < SCHED_LATENCY_BUCKETS_UNITS.length &&
      units > (SCHED_LATENCY_BUCKETS_UNITS[i] as number)
    )
      i++;
    this.stats.schedLatencyBuckets[i] = (this.stats.schedLatencyBuckets[i] as number) + 1;
    this.stats.schedLatencySumUnits += units;
  }

  private dispatch(dom: Domain): void {
    this.recordLatency(this.stats.nowUnits - dom.readySinceUnits);
    const ex = dom.ex;
    let act: Activation;
    const n = dom.boundNotification;
    if (
      n?.set &&
      !dom.pendingMain &&
      dom.suspended === undefined &&
      ex.notify !== undefined &&
      ex.async === undefined &&
      dom.effects === undefined &&
      !this.tracing
    ) {
      this.dispatchNotify(dom, ex.notify, n.take());
      return;
    }
    if (dom.suspended !== undefined) {
      act = dom.suspended;
      dom.suspended = undefined;
      dom.rewinding = true;
      (ex.async as NonNullable<typeof ex.async>).startRewind(ex.async?.buffer);
    } else if (dom.pendingMain) {
      dom.pendingMain = false;
      act = { kind: 'main', fn: ex.main as WasmFn, args: [], reply: undefined };
    } else if (dom.boundNotification?.set && ex.notify !== undefined) {
      act = {
        kind: 'notify',
        fn: ex.notify,
        args: [dom.boundNotification.take()],
        reply: undefined,
      };
    } else {
      const msg = (dom.recvEp as Endpoint).dequeue() as Message;
      this.deliver(dom, msg);
      act = {
        kind: 'handle',
        fn: ex.handle as WasmFn,
        args: [msg.badge, msg.info, msg.mr0, msg.mr1],
        reply: msg.reply,
      };
    }
    const budget = dom.sched.budget;
    const fuel = ex.async !== undefined ? Math.min(this.timeslice, budget) : budget;
    const used = this.activate(dom, act, fuel, true);
    dom.sched.remaining -= used;
  }

  /**
   * The signal → handler path without the general activation machinery: no Activation or args
   * array is allocated and the handler is called directly. Only for domains that cannot be
   * unwound (no Asyncify), are not mirrored by a shadow and run untraced; the semantics are
   * those of {@link activateInner} for a top-level `notify` activation.
   */
  private dispatchNotify(dom: Domain, fn: WasmFn, bits: bigint): void {
    const ex = dom.ex;
    const fuel = dom.sched.budget;
    ex.setFuel(fuel);
    dom.active = true;
    dom.current = NOTIFY_ACTIVATION;
    dom.faultPending = undefined;
    dom.donatedUnits = 0;
    this.depth++;
    let ok = true;
    let thrown: unknown;
    try {
      fn(bits);
    } catch (e) {
      ok = false;
      thrown = e;
    }
    this.depth--;
    dom.active = false;
    dom.current = undefined;
    const left = fuelLeftAfter(ex, ok, thrown);
    const used = Math.max(0, fuel - left);
    this.charge(dom, used, true);
    dom.sched.remaining -= used;
    if (!ok || dom.faultPending !== undefined) {
      if (thrown instanceof KernelAssertionError) throw thrown;
      const f = dom.faultPending ?? classify(ex.fault.value as number, left, thrown);
      ex.fault.value = 0;
      this.fault(dom, f.kind, f.detail, f.message);
      return;
    }
    dom.lastResult = undefined;
    if (dom.probation > 0 && --dom.probation === 0) dom.previous = undefined;
  }

  /**
   * Books one finished activation: the domain pays what it used less what passive servers it
   * called used (they charged the caller's fuel already); only top-level activations advance
   * the kernel's clock of fuel units.
   */
  private charge(dom: Domain, used: number, topLevel: boolean): void {
    dom.stats.fuelUsed += Math.max(0, used - dom.donatedUnits);
    dom.stats.activations++;
    this.stats.activations++;
    if (topLevel) this.stats.nowUnits += used;
  }

  /**
   * Runs one activation with `fuel` units. Returns the fuel used (including passive servers it
   * called). Handles unwinding (preemption, blocking), faults and the implicit reply.
   */
  private activate(dom: Domain, act: Activation, fuel: number, topLevel: boolean): number {
    const before = dom.effects?.length ?? 0;
    const faults = dom.stats.faults;
    const used = this.activateInner(dom, act, fuel, topLevel);
    dom.mirror?.(act, before, used, dom.stats.faults > faults);
    return used;
  }

  private activateInner(dom: Domain, act: Activation, fuel: number, topLevel: boolean): number {
    const ex = dom.ex;
    const hard = Math.min(
      ex.async !== undefined && topLevel ? fuel * HARD_FUEL_FACTOR + HARD_FUEL_SLACK_UNITS : fuel,
      0x7fffffff,
    );
    ex.setFuel(hard);
    // The fault global is only ever set right before a trap, and reset when that trap is
    // handled, so it is 0 here without paying a global write per activation.
    if (ex.async !== undefined) ex.async.softFuel.value = topLevel ? fuel : 0x3fffffff;
    dom.active = true;
    dom.current = act;
    dom.faultPending = undefined;
    dom.donatedUnits = 0;
    this.depth++;
    let result: unknown;
    let thrown: unknown;
    let ok = true;
    try {
      const a = act.args;
      result =
        a.length === 4 ? act.fn(a[0], a[1], a[2], a[3]) : a.length === 0 ? act.fn() : act.fn(...a);
    } catch (e) {
      ok = false;
      thrown = e;
    }
    this.depth--;
    dom.active = false;
    dom.current = undefined;
    // A nested (passive) server's trap is not charged in full: that fuel is its caller's.
    const left = topLevel ? fuelLeftAfter(ex, ok, thrown) : ex.getFuel();
    const used = Math.max(0, hard - left);
    this.charge(dom, used, topLevel);
    if (thrown instanceof KernelAssertionError) throw thrown;
    this.options.trace?.({ t: 'activation', domain: dom.id, kind: act.kind, fuelUsed: used });
    if (ok && dom.unwinding && dom.faultPending === undefined) {
      this.finishUnwind(dom, act);
      return used;
    }
    dom.unwinding = false;
    dom.rewinding = false;
    if (!ok || dom.faultPending !== undefined) {
      const f = dom.faultPending ?? classify(ex.fault.value as number, left, thrown);
      ex.fault.value = 0;
      act.reply?.resolve(ERROR_REPLY(Status.E_SERVER_FAULT), 0n, 0n);
      this.fault(
        dom,
        topLevel || f.kind !== FaultKind.OUT_OF_BUDGET ? f.kind : FaultKind.TIMEOUT,
        f.detail,
        f.message,
      );
      return used;
    }
    dom.lastResult = result;
    if (act.reply !== undefined && !act.reply.done && act.kind === 'handle') {
      act.reply.resolve(
        Info.make(0),
        BigInt.asIntN(64, typeof result === 'bigint' ? result : 0n),
        0n,
      );
    }
    if (dom.probation > 0 && --dom.probation === 0) dom.previous = undefined;
    return used;
  }

  private finishUnwind(dom: Domain, act: Activation): void {
    const a = dom.ex.async as NonNullable<typeof dom.ex.async>;
    a.stopUnwind();
    dom.unwinding = false;
    dom.suspended = act;
    if (!dom.blocked) {
      dom.stats.preemptions++;
      this.stats.preemptions++;
    }
  }

  /**
   * Turns a fault into a fault message to the domain's fault endpoint (seL4 style), or applies
   * the hot-swap rollback or the kernel-side restart policy. The domain stops running until a
   * supervisor restarts it.
   */
  fault(dom: Domain, kind: number, detail: number, message: string): void {
    dom.stats.faults++;
    this.stats.faults++;
    dom.logFault({ kind, detail, message, atUnits: this.stats.nowUnits });
    this.options.trace?.({ t: 'fault', domain: dom.id, kind, detail, message });
    if (dom.effects !== undefined) dom.effects.push(`fault:${kind}`);
    if (dom.shadowOf !== undefined) {
      dom.state = 'faulted';
      return;
    }
    if (dom.previous !== undefined && dom.probation > 0) {
      this.rollback(dom);
      return;
    }
    dom.state = 'faulted';
    dom.suspended = undefined;
    dom.blocked = false;
    dom.waitingOn = undefined;
    const ep = dom.faultEp;
    if (ep?.live && ep.obj instanceof Endpoint) {
      const st = ep.obj.enqueue({
        badge: ep.badge,
        info: Info.make(LABEL_FAULT),
        mr0: BigInt(kind),
        mr1: BigInt(dom.id),
        data: undefined,
        caps: [],
        priority: dom.sched.priority,
        reply: undefined,
      });
      if (st === Status.OK) return;
    }
    const policy = this.restartPolicies.get(dom.id);
    if (policy !== undefined && policy.used < policy.max) {
      policy.used++;
      this.restart(dom);
    }
  }

  /**
   * Runs an export of a quiescent domain on `fuel` units without scheduling it and without
   * sending fault messages (upgrade hooks, state savers, shadow mirroring).
   */
  runHook(
    dom: Domain,
    fn: WasmFn,
    args: readonly unknown[],
    fuel: number,
  ):
    | { ok: true; value: unknown; used: number }
    | { ok: false; kind: number; message: string; used: number } {
    if (dom.active) throw new KernelError(KernelErrorCode.DOMAIN_BUSY, 'domain is running');
    // A dead domain's instance may already serve another domain (spawn pool).
    if (dom.state === 'dead')
      throw new KernelError(KernelErrorCode.DOMAIN_UNKNOWN, 'domain is dead');
    const ex = dom.ex;
    ex.setFuel(fuel);
    ex.fault.value = 0;
    if (ex.async !== undefined) ex.async.softFuel.value = 0x3fffffff;
    dom.active = true;
    dom.faultPending = undefined;
    dom.current = { kind: 'main', fn, args, reply: undefined };
    this.depth++;
    try {
      const value = fn(...args);
      if (dom.faultPending !== undefined || dom.unwinding) {
        const f = dom.faultPending ?? { kind: FaultKind.TRAP, message: 'hook tried to block' };
        return {
          ok: false,
          kind: f.kind,
          message: f.message,
          used: fuel - ex.getFuel(),
        };
      }
      return { ok: true, value, used: fuel - ex.getFuel() };
    } catch (e) {
      if (e instanceof KernelAssertionError) throw e;
      const left = fuelLeftAfter(ex, false, e);
      const f = dom.faultPending ?? classify(ex.fault.value as number, left, e);
      ex.fault.value = 0;
      return { ok: false, kind: f.kind, message: f.message, used: fuel - left };
    } finally {
      this.depth--;
      dom.active = false;
      dom.current = undefined;
      dom.faultPending = undefined;
      dom.unwinding = false;
    }
  }

  /** Rolls a hot-swapped domain back to its previous version. */
  rollback(dom: Domain): void {
    const prev = dom.previous;
    if (prev === undefined)
      throw new KernelError(KernelErrorCode.UPGRADE_FAILED, 'no previous version to roll back to');
    dom.module = prev.module;
    dom.instance = prev.instance;
    dom.ex = prev.ex;
    dom.previous = undefined;
    dom.probation = 0;
    dom.version--;
    dom.suspended = undefined;
    dom.blocked = false;
    dom.waitingOn = undefined;
    dom.state = 'live';
    dom.stats.rollbacks++;
    this.makeReady(dom);
  }

  // ---------------------------------------------------------------- IPC

  private serverFor(ep: Endpoint): Domain | undefined {
    const s = ep.receiver === undefined ? undefined : this.domains.get(ep.receiver.id);
    if (
      s === undefined ||
      s.state !== 'live' ||
      s.active ||
      s.suspended !== undefined ||
      ep.queue.length > 0
    )
      return undefined;
    if (s.ex.handle === undefined || this.depth >= CALL_DEPTH_MAX) return undefined;
    return s;
  }

  /** Copies message data and granted caps into the receiver; sets its message registers. */
  private deliver(dom: Domain, msg: Message): void {
    dom.stats.ipcReceived++;
    dom.msg.info = msg.info;
    dom.msg.badge = msg.badge;
    dom.msg.mr0 = msg.mr0;
    dom.msg.mr1 = msg.mr1;
    if (msg.data === undefined && msg.caps.length === 0) return;
    const base = dom.ex.ipcBuffer;
    if (base < 0 || dom.ex.memory === undefined) return;
    const view = new DataView(dom.ex.memory.buffer);
    let caps = 0;
    for (const c of msg.caps) {
      if (!c.live) continue;
      const child = derive(c, c.rights);
      if (child === undefined) continue;
      const cptr = dom.cspace.insert(child);
      if (cptr < 0) {
        deleteCap(child);
        continue;
      }
      view.setUint32(base + IpcBuffer.CAPS + 4 * caps++, cptr, true);
    }
    const len = msg.data?.length ?? 0;
    if (msg.data !== undefined)
      new Uint8Array(dom.ex.memory.buffer, base + IpcBuffer.DATA, len).set(msg.data);
    dom.msg.info = Info.make(Info.label(msg.info), len, caps);
    view.setUint32(base + IpcBuffer.INFO, dom.msg.info, true);
    view.setBigInt64(base + IpcBuffer.BADGE, msg.badge, true);
    view.setBigInt64(base + IpcBuffer.MR0, msg.mr0, true);
    view.setBigInt64(base + IpcBuffer.MR1, msg.mr1, true);
  }

  /** The fast path: enters an idle server's handler directly on the caller's fuel. */
  private fastpath(
    server: Domain,
    caller: Domain | undefined,
    msg: Message,
    fuel: number,
  ): { info: number; mr0: bigint; mr1: bigint; data: Uint8Array | undefined } {
    // A class instance, not a closure: the fast path allocates as little as it can.
    const sink = new CaptureSink();
    const reply = new Reply(sink);
    this.stats.ipcMessages++;
    this.stats.ipcFastpath++;
    this.deliver(server, msg);
    const used = this.activate(
      server,
      {
        kind: 'handle',
        fn: server.ex.handle as WasmFn,
        args: [msg.badge, msg.info, msg.mr0, msg.mr1],
        reply,
      },
      fuel,
      false,
    );
    if (caller !== undefined) {
      caller.ex.setFuel(caller.ex.getFuel() - used);
      caller.donatedUnits += used;
    }
    if (!reply.done) reply.resolve(ERROR_REPLY(Status.E_NO_REPLY), 0n, 0n);
    return sink;
  }

  // ---------------------------------------------------------------- syscalls

  /**
   * The import object of one instance. The closures read the domain from `b` on every call
   * rather than capturing it, so a recycled instance (spawn pool) serves its next domain by
   * repointing `b.dom`; the cast is sound because an instance only runs once bound.
   */
  private syscalls(b: SyscallBinding): Record<string, WasmFn> {
    const s: Record<string, (...a: never[]) => unknown> = {
      debug_log: (ptr: number, len: number) => this.sysDebugLog(b.dom as Domain, ptr, len),
      cap_copy: (src: number, rights: number) =>
        this.sysCapDerive(b.dom as Domain, src, rights, undefined),
      cap_mint: (src: number, rights: number, badge: bigint) =>
        this.sysCapDerive(b.dom as Domain, src, rights, badge),
      cap_move: (src: number) => this.sysCapMove(b.dom as Domain, src),
      cap_delete: (cptr: number) => this.sysCapDelete(b.dom as Domain, cptr),
      cap_revoke: (cptr: number) => this.sysCapRevoke(b.dom as Domain, cptr),
      cap_info: (cptr: number) => this.sysCapInfo(b.dom as Domain, cptr),
      send: (ep: number, info: number, mr0: bigint, mr1: bigint) =>
        this.sysSend(b.dom as Domain, ep, info, mr0, mr1),
      call: (ep: number, info: number, mr0: bigint, mr1: bigint) =>
        this.sysCall(b.dom as Domain, ep, info, mr0, mr1),
      reply: (info: number, mr0: bigint, mr1: bigint) =>
        this.sysReply(b.dom as Domain, info, mr0, mr1),
      reply_save: () => this.sysReplySave(b.dom as Domain),
      reply_send: (r: number, info: number, mr0: bigint, mr1: bigint) =>
        this.sysReplySend(b.dom as Domain, r, info, mr0, mr1),
      recv_bind: (ep: number) => this.sysRecvBind(b.dom as Domain, ep),
      msg_get: (i: number) => this.sysMsgGet(b.dom as Domain, i),
      notify_signal: (n: number) => this.sysSignal(b.dom as Domain, n),
      notify_poll: (n: number) => this.sysPoll(b.dom as Domain, n),
      notify_bind: (n: number) => this.sysNotifyBind(b.dom as Domain, n),
      notify_wait: (n: number) => this.sysNotifyWait(b.dom as Domain, n),
      ep_cancel_badged: (ep: number, badge: bigint) =>
        this.sysCancelBadged(b.dom as Domain, ep, badge),
      device_read: (d: number, reg: number) => this.sysDeviceRead(b.dom as Domain, d, reg),
      device_write: (d: number, reg: number, v: bigint) =>
        this.sysDeviceWrite(b.dom as Domain, d, reg, v),
      irq_bind: (irq: number, n: number) => this.sysIrqBind(b.dom as Domain, irq, n),
      irq_ack: (irq: number) => this.sysIrqAck(b.dom as Domain, irq),
      domain_restart: (d: number) => this.sysDomainRestart(b.dom as Domain, d),
      yield: () => this.sysYield(b.dom as Domain, true),
      fuel_yield: () => this.sysYield(b.dom as Domain, false),
    };
    const trace = this.options.trace;
    if (trace === undefined) return s as Record<string, WasmFn>;
    const out: Record<string, WasmFn> = {};
    for (const [name, f] of Object.entries(s)) {
      const g = f as WasmFn;
      out[name] = (...args: unknown[]) => {
        const result = g(...args);
        trace({ t: 'syscall', domain: (b.dom as Domain).id, name, args, result });
        return result;
      };
    }
    return out;
  }

  /** Faults the calling domain: the JS exception unwinds its wasm frames. */
  private die(dom: Domain, kind: number, detail: number, message: string): never {
    dom.faultPending ??= { kind, detail, message };
    throw new DomainFault(kind, detail);
  }

  /** Looks up a cap the caller must hold; anything else is an INVALID_CAP fault. */
  private capOf(dom: Domain, cptr: number, type: ObjTypeValue | 0, rights: number): Cap {
    if (dom.faultPending !== undefined)
      throw new DomainFault(dom.faultPending.kind, dom.faultPending.detail);
    const cap = dom.cspace.lookup(cptr);
    if (
      cap === undefined ||
      (type !== 0 && cap.obj.type !== type) ||
      !cap.has(rights) ||
      cap.obj.dead
    ) {
      return this.die(
        dom,
        FaultKind.INVALID_CAP,
        cptr,
        `invalid capability ${cptr} (type ${type}, rights ${rights})`,
      );
    }
    return cap;
  }

  /** Records an effect when a shadow compares this domain (the text is built only then). */
  private effect(dom: Domain, text: string): boolean {
    if (dom.effects !== undefined) dom.effects.push(text);
    return dom.shadowOf !== undefined;
  }

  private readBytes(dom: Domain, ptr: number, len: number): Uint8Array {
    const mem = dom.ex.memory;
    if (mem === undefined || ptr < 0 || len < 0 || ptr + len > mem.buffer.byteLength) {
      return this.die(
        dom,
        FaultKind.BAD_SYSCALL_ARG,
        ptr,
        `buffer [${ptr}, +${len}) out of bounds`,
      );
    }
    return new Uint8Array(mem.buffer, ptr, len);
  }

  private sysDebugLog(dom: Domain, ptr: number, len: number): number {
    const n = Math.min(len >>> 0, DEBUG_LOG_BYTES_MAX);
    const text = Buffer.from(this.readBytes(dom, ptr >>> 0, n)).toString('utf8');
    if (dom.effects !== undefined) this.effect(dom, `log:${text}`);
    if (dom.shadowOf === undefined) this.options.log?.(dom, text);
    return n;
  }

  private sysCapDerive(
    dom: Domain,
    src: number,
    rights: number,
    badge: bigint | undefined,
  ): number {
    const cap = this.capOf(dom, src, 0, 0);
    if (dom.shadowOf !== undefined) {
      if (dom.effects !== undefined) this.effect(dom, `cap_derive:${src}`);
      return Status.OK;
    }
    const child = derive(cap, rights, badge);
    if (child === undefined) return Status.E_BADGED;
    const cptr = dom.cspace.insert(child);
    if (cptr < 0) {
      deleteCap(child);
      return Status.E_CNODE_FULL;
    }
    return cptr;
  }

  private sysCapMove(dom: Domain, src: number): number {
    const cap = this.capOf(dom, src, 0, 0);
    if (dom.shadowOf !== undefined) return Status.OK;
    const cptr = moveCap(cap, dom.cspace);
    return cptr < 0 ? Status.E_CNODE_FULL : cptr;
  }

  private sysCapDelete(dom: Domain, cptr: number): number {
    const cap = this.capOf(dom, cptr, 0, 0);
    if (
      dom.effects !== undefined
        ? this.effect(dom, `cap_delete:${cptr}`)
        : dom.shadowOf !== undefined
    )
      return Status.OK;
    deleteCap(cap);
    this.sweep();
    return Status.OK;
  }

  private sysCapRevoke(dom: Domain, cptr: number): number {
    const cap = this.capOf(dom, cptr, 0, 0);
    if (
      dom.effects !== undefined
        ? this.effect(dom, `cap_revoke:${cptr}`)
        : dom.shadowOf !== undefined
    )
      return 0;
    const n = revokeCap(cap);
    this.sweep();
    return n;
  }

  private sysCapInfo(dom: Domain, cptr: number): bigint {
    const cap = dom.cspace.lookup(cptr);
    if (cap === undefined || cap.obj.dead) return -1n;
    return (BigInt(cap.obj.type) << 8n) | BigInt(cap.rights);
  }

  /** Reads an outgoing message from the caller's registers and IPC buffer. */
  private outgoing(
    dom: Domain,
    cap: Cap,
    info: number,
    mr0: bigint,
    mr1: bigint,
    reply: Reply | undefined,
  ): Message {
    const label = Info.label(info);
    const len = Info.length(info);
    const ncaps = Info.caps(info);
    if (label >= LABEL_KERNEL_MIN || len > IPC_DATA_BYTES_MAX || ncaps > IPC_CAPS_MAX) {
      return this.die(dom, FaultKind.BAD_SYSCALL_ARG, info, `bad message info ${info}`);
    }
    let data: Uint8Array | undefined;
    const caps: Cap[] = [];
    if (len > 0 || ncaps > 0) {
      const base = dom.ex.ipcBuffer;
      if (base < 0)
        return this.die(dom, FaultKind.BAD_SYSCALL_ARG, info, 'message data needs an IPC buffer');
      if (len > 0) data = this.readBytes(dom, base + IpcBuffer.DATA, len).slice();
      if (ncaps > 0) {
        if (!cap.has(Rights.GRANT))
          return this.die(dom, FaultKind.INVALID_CAP, 0, 'cap transfer needs Grant');
        const view = new DataView((dom.ex.memory as WasmMemory).buffer);
        for (let i = 0; i < ncaps; i++)
          caps.push(this.capOf(dom, view.getUint32(base + IpcBuffer.CAPS + 4 * i, true), 0, 0));
      }
    }
    return { badge: cap.badge, info, mr0, mr1, data, caps, priority: dom.sched.priority, reply };
  }

  private sysSend(dom: Domain, ep: number, info: number, mr0: bigint, mr1: bigint): number {
    const cap = this.capOf(dom, ep, ObjType.ENDPOINT, Rights.WRITE);
    const msg = this.outgoing(dom, cap, info, mr0, mr1, undefined);
    if (
      dom.effects !== undefined
        ? this.effect(dom, `send:${ep}:${info}:${mr0}:${mr1}`)
        : dom.shadowOf !== undefined
    )
      return Status.OK;
    dom.stats.ipcSent++;
    this.stats.ipcMessages++;
    return (cap.obj as Endpoint).enqueue(msg);
  }

  private setReplyRegs(
    dom: Domain,
    info: number,
    mr0: bigint,
    mr1: bigint,
    data: Uint8Array | undefined,
  ): void {
    dom.msg.info = info;
    dom.msg.badge = 0n;
    dom.msg.mr0 = mr0;
    dom.msg.mr1 = mr1;
    if (data !== undefined && dom.ex.ipcBuffer >= 0 && dom.ex.memory !== undefined) {
      new Uint8Array(dom.ex.memory.buffer, dom.ex.ipcBuffer + IpcBuffer.DATA, data.length).set(
        data,
      );
    }
  }

  /**
   * `call`. The common case — a valid endpoint cap with Write and GrantReply, an idle server
   * with `genesis_handle`, no data or caps in `info`, nothing shadowed, traced or pending — takes
   * {@link fastCall}; everything else takes the general path below, which has the same result.
   */
  private sysCall(dom: Domain, ep: number, info: number, mr0: bigint, mr1: bigint): bigint {
    // The fast-path guard, inlined: seL4's fastpath checks the same kind of conditions
    // (cap type and rights, receiver waiting, no extra message words, no pending fault).
    if (
      info >= 0 &&
      info < LABEL_KERNEL_MIN &&
      dom.faultPending === undefined &&
      dom.effects === undefined &&
      dom.shadowOf === undefined &&
      !dom.rewinding &&
      !this.tracing &&
      this.depth < CALL_DEPTH_MAX
    ) {
      const cap = dom.cspace.lookup(ep);
      if (
        cap !== undefined &&
        (cap.rights & FAST_CALL_RIGHTS) === FAST_CALL_RIGHTS &&
        cap.obj.type === ObjType.ENDPOINT &&
        !cap.obj.dead
      ) {
        const endpoint = cap.obj as Endpoint;
        const s = endpoint.receiver as Domain | undefined;
        if (
          s !== undefined &&
          s.owner === this &&
          s.state === 'live' &&
          !s.active &&
          s.suspended === undefined &&
          s.effects === undefined &&
          s.ex.async === undefined &&
          s.ex.handle !== undefined &&
          endpoint.queue.length === 0
        ) {
          return this.fastCall(dom, s, s.ex.handle, cap.badge, info, mr0, mr1);
        }
      }
    }
    return this.slowCall(dom, ep, info, mr0, mr1);
  }

  /**
   * The IPC fast path (seL4 fastpath + MCS passive server): enters the idle server's handler
   * directly on the caller's fuel. Fuel donation costs four wasm calls — read the caller's fuel,
   * give it to the server, read what is left, give that back to the caller — because the
   * caller is suspended inside this import, so its counter cannot change meanwhile and "charge
   * the caller what the server used" is exactly "the caller continues with what the server left".
   * Counters are plain number increments. No object is allocated unless the server faults or
   * uses `reply`/`reply_save` explicitly.
   */
  private fastCall(
    dom: Domain,
    s: Domain,
    handle: WasmFn,
    badge: bigint,
    info: number,
    mr0: bigint,
    mr1: bigint,
  ): bigint {
    const depth = this.depth;
    let frame = this.frames[depth];
    if (frame === undefined) {
      frame = new FastFrame();
      this.frames[depth] = frame;
    } else if (frame.lazy !== undefined || frame.answered) {
      frame.reset(); // only after a call that used reply/reply_save or faulted
    }
    frame.fn = handle;
    const stats = this.stats;
    dom.stats.ipcSent++;
    stats.ipcMessages++;
    stats.ipcFastpath++;
    s.stats.ipcReceived++;
    const m = s.msg;
    m.info = info;
    const w = m.words;
    w[0] = badge;
    w[1] = mr0;
    w[2] = mr1;
    const cex = dom.ex;
    const sex = s.ex;
    const fuel = cex.getFuel();
    const donated = Math.max(fuel, 0);
    sex.setFuel(donated);
    s.active = true;
    s.current = frame;
    s.faultPending = undefined;
    s.donatedUnits = 0;
    this.depth = depth + 1;
    let result: unknown;
    let thrown: unknown;
    let ok = true;
    try {
      result = handle(badge, info, mr0, mr1);
    } catch (e) {
      ok = false;
      thrown = e;
    }
    this.depth = depth;
    s.active = false;
    s.current = undefined;
    const left = sex.getFuel();
    let used = donated - left;
    if (used < 0) used = 0;
    const own = used - s.donatedUnits;
    if (own > 0) s.stats.fuelUsed += own;
    s.stats.activations++;
    stats.activations++;
    if (ok && s.faultPending === undefined && frame.lazy === undefined) {
      // The common case: the handler's return value is the reply (label 0). It goes straight
      // into the caller's registers, never through a heap field.
      if (s.probation > 0 && --s.probation === 0) s.previous = undefined;
      cex.setFuel(fuel - used);
      dom.donatedUnits += used;
      const r = dom.msg;
      r.info = 0;
      const rw = r.words;
      const v = typeof result === 'bigint' ? result : 0n;
      rw[0] = 0n;
      rw[1] = v;
      rw[2] = 0n;
      return v;
    }
    return this.fastCallRare(dom, s, frame, ok, thrown, result, left, fuel - used, used);
  }

  /** The end of a fast call whose server faulted or used `reply`/`reply_save` (kept out of
   * {@link fastCall} so the common path stays small enough for V8 to inline). */
  private fastCallRare(
    dom: Domain,
    s: Domain,
    frame: FastFrame,
    ok: boolean,
    thrown: unknown,
    result: unknown,
    left: number,
    callerFuel: number,
    used: number,
  ): bigint {
    if (!ok || s.faultPending !== undefined) {
      if (thrown instanceof KernelAssertionError) throw thrown;
      this.fastCallFault(s, frame, thrown, left);
    } else {
      if (s.probation > 0 && --s.probation === 0) s.previous = undefined;
      if (!frame.answered) {
        const lazy = frame.lazy as Reply;
        if (frame.saved) {
          // reply_save without an answer during the call: the caller gets E_NO_REPLY (as the
          // general path does), and the saved Reply cap is spent.
          lazy.resolve(ERROR_REPLY(Status.E_NO_REPLY), 0n, 0n);
        } else {
          // A Reply was made but not used: the return value answers, and the Reply is spent.
          lazy.resolve(0, typeof result === 'bigint' ? result : 0n, 0n);
        }
      }
    }
    dom.ex.setFuel(callerFuel);
    dom.donatedUnits += used;
    this.setReplyRegs(dom, frame.info, frame.mr0, frame.mr1, frame.data);
    return frame.mr0;
  }

  /** A fault of a fast-path server: same reporting as {@link activateInner}'s nested case. */
  private fastCallFault(s: Domain, frame: FastFrame, thrown: unknown, left: number): void {
    const f = s.faultPending ?? classify(s.ex.fault.value as number, left, thrown);
    s.ex.fault.value = 0;
    if (!frame.saved) frame.lazy?.resolve(ERROR_REPLY(Status.E_SERVER_FAULT), 0n, 0n);
    if (!frame.saved) frame.deliver(ERROR_REPLY(Status.E_SERVER_FAULT), 0n, 0n, undefined);
    this.fault(
      s,
      f.kind === FaultKind.OUT_OF_BUDGET ? FaultKind.TIMEOUT : f.kind,
      f.detail,
      f.message,
    );
    if (!frame.answered) (frame.lazy as Reply).resolve(ERROR_REPLY(Status.E_NO_REPLY), 0n, 0n);
  }

  private slowCall(dom: Domain, ep: number, info: number, mr0: bigint, mr1: bigint): bigint {
    if (dom.rewinding) return this.resumeCall(dom);
    const cap = this.capOf(dom, ep, ObjType.ENDPOINT, Rights.WRITE);
    if (!cap.has(Rights.GRANT_REPLY) && !cap.has(Rights.GRANT)) {
      return this.die(dom, FaultKind.INVALID_CAP, ep, 'call needs Grant or GrantReply');
    }
    if (dom.shadowOf !== undefined) return this.shadowCall(dom, ep, info, mr0, mr1);
    dom.stats.ipcSent++;
    const endpoint = cap.obj as Endpoint;
    const server = this.serverFor(endpoint);
    if (server !== undefined) {
      const msg = this.outgoing(dom, cap, info, mr0, mr1, undefined);
      const r = this.fastpath(server, dom, msg, Math.max(0, dom.ex.getFuel()));
      this.setReplyRegs(dom, r.info, r.mr0, r.mr1, r.data);
      if (dom.effects !== undefined)
        this.effect(dom, `call:${ep}:${info}:${mr0}:${mr1}=>${r.info}:${r.mr0}`);
      return r.mr0;
    }
    const canBlock =
      dom.ex.async !== undefined && this.depth === 1 && endpoint.receiver !== undefined;
    if (!canBlock) {
      this.setReplyRegs(
        dom,
        ERROR_REPLY(endpoint.receiver === undefined ? Status.E_NO_RECEIVER : Status.E_WOULD_BLOCK),
        0n,
        0n,
        undefined,
      );
      return 0n;
    }
    const reply = new Reply({
      deliver: (rinfo, rmr0, rmr1, data) => {
        this.setReplyRegs(dom, rinfo, rmr0, rmr1, data);
        dom.resumeValue = rmr0;
        dom.blocked = false;
        this.makeReady(dom);
      },
    });
    const st = endpoint.enqueue(this.outgoing(dom, cap, info, mr0, mr1, reply));
    if (st !== Status.OK) {
      this.setReplyRegs(dom, ERROR_REPLY(st), 0n, 0n, undefined);
      return 0n;
    }
    this.stats.ipcMessages++;
    dom.blocked = true;
    this.startUnwind(dom);
    return 0n;
  }

  private resumeCall(dom: Domain): bigint {
    dom.rewinding = false;
    dom.ex.async?.stopRewind();
    return dom.resumeValue;
  }

  private shadowCall(dom: Domain, ep: number, info: number, mr0: bigint, mr1: bigint): bigint {
    // A shadow never reaches a real server: it gets the reply the live domain got for the same
    // call (mirrored in order), or an E_WOULD_BLOCK reply when the live domain made no such call.
    const live = dom.shadowOf as Domain;
    const key = `call:${ep}:${info}:${mr0}:${mr1}=>`;
    if (dom.effects !== undefined) this.effect(dom, key);
    const replies = live.effects ?? [];
    for (let i = dom.replayIndex; i < replies.length; i++) {
      const e = replies[i] as string;
      if (e.startsWith(key)) {
        dom.replayIndex = i + 1;
        const [rinfo, rmr0] = e.slice(key.length).split(':');
        this.setReplyRegs(dom, Number(rinfo), BigInt(rmr0 ?? '0'), 0n, undefined);
        return BigInt(rmr0 ?? '0');
      }
    }
    this.setReplyRegs(dom, ERROR_REPLY(Status.E_WOULD_BLOCK), 0n, 0n, undefined);
    return 0n;
  }

  private startUnwind(dom: Domain): void {
    const a = dom.ex.async as NonNullable<typeof dom.ex.async>;
    const view = new DataView((dom.ex.memory as WasmMemory).buffer);
    // Asyncify's data structure: [current stack pointer, stack end] followed by the stack.
    view.setInt32(a.buffer, a.buffer + 8, true);
    view.setInt32(a.buffer + 4, a.buffer + a.bufferBytes, true);
    dom.unwinding = true;
    a.startUnwind(a.buffer);
  }

  private sysYield(dom: Domain, voluntary: boolean): void {
    if (dom.rewinding) {
      dom.rewinding = false;
      dom.ex.async?.stopRewind();
      return;
    }
    const a = dom.ex.async;
    if (a === undefined || this.depth !== 1 || dom.shadowOf !== undefined) {
      // Cannot unwind here (nested passive server or not preemptible): stop calling back and
      // let the kernel's hard fuel counter bound the activation.
      if (a !== undefined) a.softFuel.value = 0x3fffffff;
      return;
    }
    if (voluntary) dom.stats.preemptions--; // counted again in finishUnwind; a yield is not a preemption
    this.startUnwind(dom);
  }

  private currentReply(dom: Domain): Reply | undefined {
    const cur = dom.current;
    if (cur instanceof FastFrame && cur.reply === undefined && !cur.saved && !cur.answered) {
      // A fast-path call has no Reply object until the server needs one.
      cur.reply = new Reply(cur);
      cur.lazy = cur.reply;
    }
    const r = cur?.reply;
    return r !== undefined && !r.done ? r : undefined;
  }

  private replyMessage(dom: Domain, info: number): Uint8Array | undefined {
    const len = Info.length(info);
    if (Info.label(info) >= LABEL_KERNEL_MIN || len > IPC_DATA_BYTES_MAX || Info.caps(info) !== 0) {
      return this.die(dom, FaultKind.BAD_SYSCALL_ARG, info, `bad reply info ${info}`);
    }
    if (len === 0) return undefined;
    if (dom.ex.ipcBuffer < 0)
      return this.die(dom, FaultKind.BAD_SYSCALL_ARG, info, 'reply data needs an IPC buffer');
    return this.readBytes(dom, dom.ex.ipcBuffer + IpcBuffer.DATA, len).slice();
  }

  private sysReply(dom: Domain, info: number, mr0: bigint, mr1: bigint): number {
    const data = this.replyMessage(dom, info);
    const r = this.currentReply(dom);
    if (r === undefined) return Status.E_NO_REPLY;
    if (dom.effects !== undefined) this.effect(dom, `reply:${info}:${mr0}:${mr1}`);
    r.resolve(info, mr0, mr1, data);
    return Status.OK;
  }

  private sysReplySave(dom: Domain): number {
    const r = this.currentReply(dom);
    if (r === undefined || dom.shadowOf !== undefined) return Status.E_NO_REPLY;
    (dom.current as Activation).reply = undefined;
    if (dom.current instanceof FastFrame) dom.current.saved = true;
    this.track(r);
    const cap = originalCap(r, Rights.WRITE);
    const cptr = dom.cspace.insert(cap);
    if (cptr < 0) {
      deleteCap(cap);
      return Status.E_CNODE_FULL;
    }
    return cptr;
  }

  private sysReplySend(dom: Domain, rc: number, info: number, mr0: bigint, mr1: bigint): number {
    const cap = this.capOf(dom, rc, ObjType.REPLY, Rights.WRITE);
    const data = this.replyMessage(dom, info);
    const ok = (cap.obj as Reply).resolve(info, mr0, mr1, data);
    deleteCap(cap);
    this.sweep();
    return ok ? Status.OK : Status.E_NO_REPLY;
  }

  private sysRecvBind(dom: Domain, ep: number): number {
    const cap = this.capOf(dom, ep, ObjType.ENDPOINT, Rights.READ);
    if (dom.ex.handle === undefined)
      return this.die(dom, FaultKind.BAD_SYSCALL_ARG, ep, `no ${Exports.HANDLE} export`);
    if (dom.shadowOf === undefined) this.bindEp(dom, cap.obj as Endpoint);
    return Status.OK;
  }

  private sysMsgGet(dom: Domain, i: number): bigint {
    switch (i) {
      case 0:
        return BigInt(dom.msg.info);
      case 1:
        return dom.msg.badge;
      case 2:
        return dom.msg.mr0;
      case 3:
        return dom.msg.mr1;
      default:
        return this.die(dom, FaultKind.BAD_SYSCALL_ARG, i, `no message register ${i}`);
    }
  }

  private sysSignal(dom: Domain, n: number): number {
    const cap = this.capOf(dom, n, ObjType.NOTIFICATION, Rights.WRITE);
    if (dom.effects !== undefined ? this.effect(dom, `signal:${n}`) : dom.shadowOf !== undefined)
      return Status.OK;
    (cap.obj as Notification).signal(cap.badge);
    return Status.OK;
  }

  private sysPoll(dom: Domain, n: number): bigint {
    const cap = this.capOf(dom, n, ObjType.NOTIFICATION, Rights.READ);
    if (dom.shadowOf !== undefined) return 0n;
    return (cap.obj as Notification).take();
  }

  /**
   * `notify_wait` (seL4 Wait on a Notification): returns and clears the word when it is non-zero;
   * otherwise a preemptible domain at top level is unwound (Asyncify, like a blocking `call`)
   * and queued on the notification until a signal hands it the bits, which the rewound syscall
   * returns. Anyone else gets E_WOULD_BLOCK at once (nothing is left half-done).
   */
  private sysNotifyWait(dom: Domain, n: number): bigint {
    if (dom.rewinding) {
      dom.rewinding = false;
      dom.ex.async?.stopRewind();
      return dom.resumeValue;
    }
    const cap = this.capOf(dom, n, ObjType.NOTIFICATION, Rights.READ);
    if (dom.shadowOf !== undefined) return BigInt(Status.E_WOULD_BLOCK);
    const ntf = cap.obj as Notification;
    if (ntf.set) return ntf.take();
    if (
      dom.ex.async === undefined ||
      this.depth !== 1 ||
      dom.effects !== undefined ||
      ntf.waiters.length >= NOTIFY_WAITERS_MAX
    )
      return BigInt(Status.E_WOULD_BLOCK);
    ntf.waiters.push(dom);
    dom.waitingOn = ntf;
    dom.blocked = true;
    this.startUnwind(dom);
    return 0n;
  }

  /** Hands `bits` to the first domain still waiting on `n`; false when there is none. */
  private wakeWaiter(n: Notification, bits: bigint): boolean {
    while (n.waiters.length > 0) {
      const d = n.waiters.shift() as Domain;
      if (d.waitingOn !== n || !d.blocked || d.state !== 'live') continue;
      d.waitingOn = undefined;
      d.resumeValue = bits;
      d.blocked = false;
      this.makeReady(d);
      return true;
    }
    return false;
  }

  private sysNotifyBind(dom: Domain, n: number): number {
    const cap = this.capOf(dom, n, ObjType.NOTIFICATION, Rights.READ);
    if (dom.ex.notify === undefined)
      return this.die(dom, FaultKind.BAD_SYSCALL_ARG, n, `no ${Exports.NOTIFY} export`);
    if (dom.shadowOf !== undefined) return Status.OK;
    (cap.obj as Notification).bound = dom;
    dom.boundNotification = cap.obj as Notification;
    return Status.OK;
  }

  private sysCancelBadged(dom: Domain, ep: number, badge: bigint): number {
    const cap = this.capOf(dom, ep, ObjType.ENDPOINT, Rights.ALL);
    if (cap.badge !== 0n)
      return this.die(dom, FaultKind.INVALID_CAP, ep, 'cancel needs an unbadged endpoint cap');
    if (
      dom.effects !== undefined
        ? this.effect(dom, `cancel:${ep}:${badge}`)
        : dom.shadowOf !== undefined
    )
      return 0;
    return (cap.obj as Endpoint).cancelBadged(badge);
  }

  private deviceOf(dom: Domain, d: number, reg: number, rights: number): Device {
    const dev = this.capOf(dom, d, ObjType.DEVICE, rights).obj as Device;
    if (!dev.checkRegister(reg))
      return this.die(dom, FaultKind.BAD_SYSCALL_ARG, reg, `bad device register ${reg}`);
    return dev;
  }

  private sysDeviceRead(dom: Domain, d: number, reg: number): bigint {
    const dev = this.deviceOf(dom, d, reg, Rights.READ);
    if (dom.shadowOf !== undefined) {
      if (dom.effects !== undefined) this.effect(dom, `device_read:${d}:${reg}`);
      return 0n;
    }
    const v = BigInt.asIntN(64, dev.host.read(reg));
    if (dom.effects !== undefined) this.effect(dom, `device_read:${d}:${reg}`);
    return v;
  }

  private sysDeviceWrite(dom: Domain, d: number, reg: number, v: bigint): number {
    const dev = this.deviceOf(dom, d, reg, Rights.WRITE);
    if (
      dom.effects !== undefined
        ? this.effect(dom, `device_write:${d}:${reg}:${v}`)
        : dom.shadowOf !== undefined
    )
      return Status.OK;
    dev.host.write(reg, v);
    return Status.OK;
  }

  private sysIrqBind(dom: Domain, irq: number, n: number): number {
    const ic = this.capOf(dom, irq, ObjType.IRQ, Rights.WRITE);
    const nc = this.capOf(dom, n, ObjType.NOTIFICATION, Rights.WRITE);
    if (
      dom.effects !== undefined
        ? this.effect(dom, `irq_bind:${irq}:${n}`)
        : dom.shadowOf !== undefined
    )
      return Status.OK;
    const i = ic.obj as Irq;
    i.notification = nc.obj as Notification;
    i.bits = nc.badge === 0n ? 1n : nc.badge;
    return Status.OK;
  }

  private sysIrqAck(dom: Domain, irq: number): number {
    const ic = this.capOf(dom, irq, ObjType.IRQ, Rights.WRITE);
    if (dom.effects !== undefined ? this.effect(dom, `irq_ack:${irq}`) : dom.shadowOf !== undefined)
      return Status.OK;
    (ic.obj as Irq).pending = false;
    return Status.OK;
  }

  private sysDomainRestart(dom: Domain, d: number): number {
    const cap = this.capOf(dom, d, ObjType.DOMAIN, Rights.WRITE);
    const target = cap.obj as Domain;
    if (dom.effects !== undefined ? this.effect(dom, `restart:${d}`) : dom.shadowOf !== undefined)
      return Status.OK;
    if (target.state === 'dead') return Status.E_DEAD;
    if (target.active || target === dom) return Status.E_WOULD_BLOCK;
    try {
      this.restart(target);
    } catch {
      return Status.E_SERVER_FAULT;
    }
    return Status.OK;
  }

  // ---------------------------------------------------------------- telemetry

  /** Per-domain counters. */
  domainStats(): DomainSnapshot[] {
    return [...this.domains.values()].map((d) => d.snapshot());
  }

  /** Kernel-wide counters (objects and caps are counted on demand). */
  snapshot(): KernelStats {
    let caps = 0;
    let objects = 0;
    for (const o of this.objects) {
      if (o.dead) continue;
      objects++;
      caps += o.capCount;
    }
    return {
      ...this.stats,
      objectsLive: objects,
      capsLive: caps,
      schedLatencyBuckets: [...this.stats.schedLatencyBuckets],
    };
  }

  /** Looks a domain up by id. */
  domain(id: number): Domain {
    const d = this.domains.get(id);
    if (d === undefined) throw new KernelError(KernelErrorCode.DOMAIN_UNKNOWN, `no domain ${id}`);
    return d;
  }

  /** Domains currently faulted. */
  faulted(): Domain[] {
    return [...this.domains.values()].filter((d) => d.state === 'faulted');
  }
}

function checkBytes(bytes: number): void {
  if (
    !Number.isInteger(bytes) ||
    bytes < 0 ||
    bytes > MEMORY_QUOTA_BYTES_MAX ||
    bytes % WASM_PAGE_BYTES !== 0
  ) {
    throw new KernelError(
      KernelErrorCode.BAD_ARGUMENT,
      `memory bytes must be a multiple of ${WASM_PAGE_BYTES} up to ${MEMORY_QUOTA_BYTES_MAX}`,
      {
        details: { bytes },
      },
    );
  }
}

/**
 * Fuel left after a top-level activation. Instrumented code keeps fuel in a local and writes it
 * to the global only at calls, exits and an out-of-fuel trap (docs/kernel.md, "Fuel"), so after
 * any other wasm trap the global lags behind the work done: such an activation is charged its
 * whole grant — deterministic, and never less than it ran.
 */
function fuelLeftAfter(ex: DomainExports, ok: boolean, thrown: unknown): number {
  const left = ex.getFuel();
  if (ok || thrown instanceof DomainFault || left < 0 || ex.fault.value !== 0) return left;
  return 0;
}

function classify(
  faultGlobal: number,
  fuelLeft: number,
  thrown: unknown,
): { kind: number; detail: number; message: string } {
  if (faultGlobal !== 0)
    return {
      kind: faultGlobal,
      detail: 0,
      message:
        faultGlobal === FaultKind.QUOTA_EXCEEDED ? 'memory.grow beyond quota' : 'out of fuel',
    };
  if (fuelLeft < 0) return { kind: FaultKind.OUT_OF_BUDGET, detail: 0, message: 'out of fuel' };
  if (thrown instanceof DomainFault)
    return { kind: thrown.kind, detail: thrown.detail, message: thrown.message };
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  return { kind: FaultKind.TRAP, detail: 0, message };
}
