/**
 * Public door of the kernel: a capability microkernel whose domains are WebAssembly instances.
 * Node built-ins only; see docs/kernel.md (design) and docs/kernel-abi.md (the syscall ABI).
 */
export {
  ABI_NAMESPACE,
  ABI_VERSION,
  Exports,
  FaultKind,
  type FaultKindValue,
  Info,
  IpcBuffer,
  LABEL_ERROR_BASE,
  LABEL_FAULT,
  LABEL_KERNEL_MIN,
  ObjType,
  type ObjTypeValue,
  Rights,
  Status,
  SYSCALLS,
} from './abi.ts';
export {
  Cap,
  CNode,
  deleteCap,
  derive,
  isAncestor,
  KObject,
  moveCap,
  originalCap,
  revokeCap,
} from './caps.ts';
export {
  type Activation,
  Domain,
  type DomainSnapshot,
  type DomainState,
  type DomainStats,
  type FaultRecord,
} from './domain.ts';
export {
  isKernelError,
  KernelAssertionError,
  KernelError,
  KernelErrorCode,
  type KernelErrorCodeValue,
} from './errors.ts';
export {
  type CallResult,
  Kernel,
  type KernelOptions,
  type KernelStats,
  type SpawnOptions,
  type TraceEvent,
} from './kernel.ts';
export * from './limits.ts';
export {
  type Checkpoint,
  checkpoint,
  hotSwap,
  restore,
  type ShadowReport,
  ShadowRun,
  startShadow,
} from './live.ts';
export { ASYNCIFY_IMPORTS, KernelModule, loadModule } from './module.ts';
export {
  Device,
  Endpoint,
  type HostDevice,
  Irq,
  MemoryQuota,
  type Message,
  Notification,
  Reply,
  SchedContext,
  TestDevice,
} from './objects.ts';
export {
  type Instrumented,
  type InstrumentMode,
  type InstrumentOptions,
  instrument,
  type ModuleInfo,
  parseModule,
} from './wasm-binary.ts';
