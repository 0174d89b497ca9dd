/**
 * Named bounds of the kernel, units last. Every queue, table, buffer and loop in the kernel is
 * bounded by one of these; relations between them are asserted when the module loads.
 */
import { kassert } from './errors.ts';

/** Largest module binary the loader accepts. */
export const MODULE_BYTES_MAX = 16 * 1024 * 1024;
/** Largest number of functions, types, imports, globals or exports in one module. */
export const MODULE_ENTRIES_MAX = 100_000;
/** Largest number of instructions in one function body the instrumenter walks. */
export const FUNCTION_INSTRUCTIONS_MAX = 4_000_000;
/** Deepest block nesting the instrumenter tracks (V8 allows far less in practice). */
export const BLOCK_DEPTH_MAX = 10_000;

/** Default number of slots in a domain's root CNode. */
export const CNODE_SLOTS_DEFAULT = 256;
/** Slots a CNode allocates up front; it doubles on demand up to its size. */
export const CNODE_SLOTS_INITIAL = 8;
/** Largest CNode; slot indices must fit in {@link CPTR_SLOT_BITS}. */
export const CNODE_SLOTS_MAX = 4096;
/** Bits of a capability pointer that name the slot; the rest hold the slot's generation. */
export const CPTR_SLOT_BITS = 12;
/** Generations wrap at this value (kept below 2^19 so a cptr stays a positive i32). */
export const CPTR_GENERATION_MAX = (1 << (31 - CPTR_SLOT_BITS)) - 1;

/** Default bound on live domains. V8 reserves ~10 GiB of address space per wasm memory, and
 * Node refuses new memories past roughly 13,000 per process. */
export const DOMAINS_LIVE_MAX_DEFAULT = 12_000;
/** Messages queued on one endpoint before `send` fails with E_QUEUE_FULL. */
export const ENDPOINT_QUEUE_MSGS_MAX = 1024;
/** Bytes of message data in the IPC buffer (beyond the inline message registers). */
export const IPC_DATA_BYTES_MAX = 1024;
/** Capabilities transferred with one message (requires Grant). */
export const IPC_CAPS_MAX = 4;
/** Size of the IPC buffer a domain exports as `genesis_ipc_buffer`: 64-byte header + data. */
export const IPC_BUFFER_BYTES = 64 + IPC_DATA_BYTES_MAX;
/** Domains blocked in `notify_wait` on one notification; past it, `notify_wait` returns
 * E_WOULD_BLOCK instead of blocking. */
export const NOTIFY_WAITERS_MAX = 64;
/** Nested synchronous calls (A calls B calls C ...) before a call returns E_DEPTH. */
export const CALL_DEPTH_MAX = 16;

/** Fuel a module's start function may burn during instantiation. */
export const FUEL_START_UNITS = 1_000_000;
/** Largest fuel slice given to one activation (fits the kernel's i32 fuel counter). */
export const FUEL_SLICE_UNITS_MAX = 1 << 30;
/** Default SchedContext budget per period, in fuel units. */
export const SCHED_BUDGET_UNITS_DEFAULT = 10_000_000;
/** Default SchedContext period, in fuel units of kernel time. */
export const SCHED_PERIOD_UNITS_DEFAULT = 20_000_000;
/** Number of priorities (0 lowest). */
export const SCHED_PRIORITIES = 256;
/** Activations the scheduler runs per `run()` call when the caller gives no bound. */
export const SCHED_ACTIVATIONS_PER_RUN_DEFAULT = 10_000;
/** Bound on a domain's pending activations (main, resume) besides queued messages. */
export const DOMAIN_PENDING_ACTIVATIONS_MAX = 4;

/**
 * Pre-instantiated instances a kernel keeps for fast spawns, over all modules (wasmtime's pooling
 * allocator idea, docs/kernel.md "Spawn pool"). They hold wasm memories, so they count against
 * the live-domain bound: an instance is pooled only while live domains + pooled < that bound.
 */
export const SPAWN_POOL_INSTANCES_MAX = 256;
/** Pooled instances per module (so one module cannot take the whole pool). */
export const SPAWN_POOL_MODULE_INSTANCES_MAX = 128;

/** WebAssembly page size. */
export const WASM_PAGE_BYTES = 65_536;
/** Default memory quota of a domain. */
export const MEMORY_QUOTA_BYTES_DEFAULT = 16 * WASM_PAGE_BYTES;
/** Largest quota the kernel hands to one domain (wasm32 maximum). */
export const MEMORY_QUOTA_BYTES_MAX = 65_536 * WASM_PAGE_BYTES;

/** Fault records kept per domain for inspection. */
export const FAULT_LOG_ENTRIES_MAX = 32;
/** Bytes of `debug_log` output one call may print. */
export const DEBUG_LOG_BYTES_MAX = 4096;
/** Trace or output records kept per domain (ring buffer). */
export const DOMAIN_OUTPUT_RECORDS_MAX = 1024;
/** Records a shadow run keeps for its divergence report. */
export const SHADOW_RECORDS_MAX = 4096;
/** Activations after a hot swap during which a fault rolls the upgrade back. */
export const UPGRADE_PROBATION_ACTIVATIONS = 16;
/** Bytes of saved state an upgrade hook may hand over (it travels through the IPC buffer). */
export const UPGRADE_STATE_BYTES_MAX = IPC_DATA_BYTES_MAX;
/** Scheduling-latency histogram bucket bounds, in fuel units of kernel time. */
export const SCHED_LATENCY_BUCKETS_UNITS: readonly number[] = [
  0, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000,
];
/** Restarts the built-in restart policy allows per domain. */
export const RESTARTS_MAX_DEFAULT = 3;
/** Device registers addressable through a Device capability. */
export const DEVICE_REGISTERS_MAX = 4096;
/** IRQ lines the host device interface may raise. */
export const IRQ_LINES_MAX = 256;

kassert(CNODE_SLOTS_MAX <= 1 << CPTR_SLOT_BITS, 'CNode slots must fit the cptr slot bits');
kassert(CNODE_SLOTS_DEFAULT <= CNODE_SLOTS_MAX, 'default CNode size');
kassert(SCHED_BUDGET_UNITS_DEFAULT <= SCHED_PERIOD_UNITS_DEFAULT, 'budget within period');
kassert(SCHED_BUDGET_UNITS_DEFAULT <= FUEL_SLICE_UNITS_MAX, 'budget fits a slice');
kassert(MEMORY_QUOTA_BYTES_DEFAULT % WASM_PAGE_BYTES === 0, 'quota in whole pages');
