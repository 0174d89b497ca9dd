/**
 * `genesis kernel run MODULE.wasm|.wat` runs a module as a domain of a fresh kernel and prints
 * its syscalls and faults with `--trace`; `genesis kernel abi` prints the syscall table.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isGenesisError } from '../../core/index.ts';
import {
  FaultKind,
  isKernelError,
  Kernel,
  type KernelModule,
  loadModule,
  SYSCALLS,
  type TraceEvent,
  WASM_PAGE_BYTES,
} from '../../kernel/index.ts';
import { CliError, parseIntFlag, printJson } from '../util.ts';

/** Bytes of a module file the CLI reads. */
const MODULE_FILE_BYTES_MAX = 16 * 1024 * 1024;
/** Activations `kernel run` allows before it stops the kernel. */
const RUN_ACTIVATIONS_MAX = 100_000;

const FAULT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(FaultKind).map(([k, v]) => [v, k]),
);

function describeTrace(e: TraceEvent): string {
  if (e.t === 'syscall') {
    const args = e.args.map((a) => String(a)).join(', ');
    return `[d${e.domain}] ${e.name}(${args}) -> ${String(e.result)}`;
  }
  if (e.t === 'fault')
    return `[d${e.domain}] FAULT ${FAULT_NAMES[e.kind] ?? e.kind} detail=${e.detail}: ${e.message}`;
  return `[d${e.domain}] activation ${e.kind} used ${e.fuelUsed} fuel`;
}

async function readModule(file: string, preemptible: boolean): Promise<KernelModule> {
  let bytes: Uint8Array;
  try {
    const buf = readFileSync(file);
    if (buf.length > MODULE_FILE_BYTES_MAX)
      throw new CliError(
        'CLI_KERNEL_MODULE',
        `${file} is larger than ${MODULE_FILE_BYTES_MAX} bytes`,
      );
    // The toolchain (wabt, Binaryen) loads only when a module needs it: it is slow to import.
    bytes = file.endsWith('.wat')
      ? await (await import('../../toolchain/index.ts')).watToWasm(buf.toString('utf8'), file)
      : new Uint8Array(buf);
  } catch (e) {
    if (isGenesisError(e)) throw e;
    throw new CliError(
      'CLI_KERNEL_MODULE',
      `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  try {
    const built = preemptible
      ? await (await import('../../toolchain/index.ts')).makePreemptible(bytes)
      : bytes;
    return loadModule(built, file);
  } catch (e) {
    if (isKernelError(e)) throw new CliError(e.code, `${file}: ${e.message}`, { cause: e });
    throw e;
  }
}

interface RunFlags {
  fuel: string;
  memory: string;
  trace?: boolean;
  json?: boolean;
  preemptible?: boolean;
  call?: string[];
}

function parseCall(text: string): [number, bigint] {
  const m = /^(\d+)(?::(-?\d+))?$/.exec(text);
  if (m === null)
    throw new CliError('CLI_BAD_CALL', `--call "${text}" must be LABEL or LABEL:MR0, e.g. 1:5`);
  return [Number(m[1]), BigInt(m[2] ?? '0')];
}

async function run(file: string, o: RunFlags): Promise<void> {
  const fuel = parseIntFlag(o.fuel, '--fuel', 1, 1 << 30);
  const memory = parseIntFlag(o.memory, '--memory', 0, 4 * 1024 ** 3);
  const memoryBytes = Math.ceil(memory / WASM_PAGE_BYTES) * WASM_PAGE_BYTES;
  const calls = (o.call ?? []).map(parseCall);
  const module = await readModule(file, o.preemptible === true);
  const out = o.json === true ? process.stderr : process.stdout;
  const kernel = new Kernel({
    ...(o.trace === true ? { trace: (e: TraceEvent) => out.write(`${describeTrace(e)}\n`) } : {}),
    log: (d, text) => out.write(`[d${d.id}] log: ${text}\n`),
  });
  let spawned: ReturnType<Kernel['spawn']>;
  try {
    spawned = kernel.spawn(module, {
      name: file,
      budgetUnits: fuel,
      periodUnits: fuel,
      memoryBytes,
    });
  } catch (e) {
    if (isKernelError(e)) throw new CliError(e.code, e.message, { cause: e });
    throw e;
  }
  const dom = spawned.domain;
  kernel.run(RUN_ACTIVATIONS_MAX);
  const replies: { label: number; mr0: string; mr1: string }[] = [];
  if (calls.length > 0) {
    if (dom.ex.handle === undefined)
      throw new CliError('CLI_KERNEL_NO_HANDLER', `${file} exports no genesis_handle to --call`);
    const ep = kernel.createEndpoint();
    kernel.bindReceiver(dom, ep);
    for (const [label, mr0] of calls) {
      if (dom.state !== 'live') break;
      const r = kernel.call(ep, label, mr0, 0n, fuel);
      replies.push({ label: r.label, mr0: r.mr0.toString(), mr1: r.mr1.toString() });
      if (o.json !== true) out.write(`call ${label}:${mr0} -> label ${r.label} mr0 ${r.mr0}\n`);
      kernel.run(RUN_ACTIVATIONS_MAX);
    }
  }
  const s = dom.snapshot();
  const summary = {
    module: file,
    state: s.state,
    fuelUsed: s.fuelUsed,
    activations: s.activations,
    preemptions: s.preemptions,
    faults: dom.faultLog.map((f) => ({
      kind: FAULT_NAMES[f.kind] ?? f.kind,
      detail: f.detail,
      message: f.message,
    })),
    memoryBytes: s.memoryBytes,
    ipcSent: s.ipcSent,
    replies,
  };
  if (o.json === true) printJson(summary);
  else {
    out.write(
      `domain ${dom.id} ${s.state}: ${s.fuelUsed} fuel, ${s.activations} activations, ${s.preemptions} preemptions, ${s.memoryBytes} bytes of memory\n`,
    );
    for (const f of summary.faults) out.write(`fault ${f.kind}: ${f.message}\n`);
  }
  if (s.state !== 'live') process.exitCode = 1;
}

/** Adds `genesis kernel ...`. */
export function register(program: Command): void {
  const k = program
    .command('kernel')
    .description('the capability microkernel (WebAssembly domains)');
  k.command('run')
    .description(
      'run MODULE.wasm or MODULE.wat as a domain; prints syscalls and faults with --trace',
    )
    .argument('<module>', 'a .wasm or .wat file')
    .option('--fuel <n>', 'fuel budget per activation (instructions)', '10000000')
    .option(
      '--memory <bytes>',
      'memory quota in bytes (rounded up to 64 KiB pages)',
      String(16 * WASM_PAGE_BYTES),
    )
    .option('--trace', 'print every syscall, activation and fault')
    .option(
      '--preemptible',
      'build with Asyncify so the domain is preempted and resumed, not faulted',
    )
    .option('--call <label:mr0...>', "after main, call the module's genesis_handle (repeatable)")
    .option('--json', 'print a JSON summary')
    .action((file: string, o: RunFlags) => run(file, o));
  k.command('abi')
    .description('print the syscall ABI (imports in the "genesis" namespace)')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const names = { 127: 'i32', 126: 'i64' } as Record<number, string>;
      const rows = Object.entries(SYSCALLS).map(([name, [p, r]]) => ({
        name,
        params: p.map((t) => names[t] ?? t),
        results: r.map((t) => names[t] ?? t),
      }));
      if (o.json === true) printJson(rows);
      else
        for (const row of rows)
          process.stdout.write(
            `genesis.${row.name}(${row.params.join(', ')}) -> ${row.results.join(', ') || 'void'}\n`,
          );
    });
}
