/**
 * Placements as kernel domains: a {@link WorkloadRunner} that resolves an instance's module by
 * its CID, has the kernel load (and fuel-instrument) it, and spawns it as a domain with the
 * instance's memory quota and CPU budget. Module bytes are checked against the CID before they
 * run, so a tile never executes code other than what the workload spec names.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Kernel, type KernelModule, loadModule } from '../kernel/index.ts';
import { rawCid } from '../store/index.ts';
import { FabricError, FabricErrorCode } from './errors.ts';
import type { InstanceSpec } from './messages.ts';
import type { WorkloadRunner } from './tile-agent.ts';

/** Largest module file a {@link DirModuleSource} reads. */
export const MODULE_FILE_BYTES_MAX = 16 * 1024 * 1024;
/** Modules a {@link DirModuleSource} indexes at most. */
export const MODULE_SOURCE_ENTRIES_MAX = 4096;
/** Fuel units a domain gets per millicore of a workload's CPU request, per scheduling period. */
export const FUEL_UNITS_PER_MILLICORE = 10_000;
/** Smallest linear-memory quota given to a domain (one WebAssembly page). */
export const DOMAIN_MEMORY_BYTES_MIN = 64 * 1024;

/** Where a runner finds module bytes by CID. */
export interface ModuleSource {
  get(cid: string): Uint8Array | undefined;
}

/** Indexes the `.wasm` files of directories by their raw sha2-256 CID. */
export class DirModuleSource implements ModuleSource {
  private readonly byCid = new Map<string, string>();

  constructor(dirs: readonly string[]) {
    for (const dir of dirs) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!name.endsWith('.wasm') || this.byCid.size >= MODULE_SOURCE_ENTRIES_MAX) continue;
        const path = join(dir, name);
        if (statSync(path).size > MODULE_FILE_BYTES_MAX) continue;
        this.byCid.set(rawCid(readFileSync(path)).toString(), path);
      }
    }
  }

  /** CIDs this source can serve, with their files. */
  entries(): [string, string][] {
    return [...this.byCid];
  }

  get(cid: string): Uint8Array | undefined {
    const path = this.byCid.get(cid);
    return path === undefined ? undefined : readFileSync(path);
  }
}

/** Runs each placed instance as a domain of one kernel. */
export class KernelRunner implements WorkloadRunner {
  readonly kind = 'kernel';
  readonly kernel: Kernel;
  private readonly modules = new Map<string, KernelModule>();
  private readonly domains = new Map<string, ReturnType<Kernel['spawn']>['domain']>();

  constructor(
    private readonly source: ModuleSource,
    kernel?: Kernel,
  ) {
    this.kernel = kernel ?? new Kernel({ domainsMax: 1024 });
  }

  async start(instance: InstanceSpec): Promise<void> {
    if (this.domains.has(instance.id)) return;
    const module = this.module(instance.module);
    try {
      const { domain } = this.kernel.spawn(module, {
        name: instance.id,
        memoryBytes: Math.max(DOMAIN_MEMORY_BYTES_MIN, instance.memoryMb * 1024 * 1024),
        budgetUnits: Math.max(1, instance.cpuMillis) * FUEL_UNITS_PER_MILLICORE,
      });
      this.domains.set(instance.id, domain);
    } catch (e) {
      throw new FabricError(
        FabricErrorCode.ModuleRejected,
        `kernel refused ${instance.id}: ${String(e)}`,
        {
          cause: e,
          details: { instance: instance.id },
        },
      );
    }
    this.kernel.run();
  }

  async stop(id: string): Promise<void> {
    const domain = this.domains.get(id);
    if (domain === undefined) return;
    this.kernel.kill(domain);
    this.domains.delete(id);
  }

  running(): string[] {
    return [...this.domains.keys()].filter((id) => this.domains.get(id)?.state !== 'dead');
  }

  private module(cid: string): KernelModule {
    const cached = this.modules.get(cid);
    if (cached !== undefined) return cached;
    const bytes = this.source.get(cid);
    if (bytes === undefined) {
      throw new FabricError(
        FabricErrorCode.ModuleUnavailable,
        `no module with CID ${cid} on this tile`,
        {
          details: { cid },
        },
      );
    }
    // The source is untrusted storage: the bytes must hash to the CID the spec names.
    if (rawCid(bytes).toString() !== cid) {
      throw new FabricError(
        FabricErrorCode.ModuleRejected,
        `module bytes do not match CID ${cid}`,
        {
          details: { cid },
        },
      );
    }
    let module: KernelModule;
    try {
      module = loadModule(bytes, cid);
    } catch (e) {
      throw new FabricError(
        FabricErrorCode.ModuleRejected,
        `module ${cid} failed to load: ${String(e)}`,
        {
          cause: e,
          details: { cid },
        },
      );
    }
    this.modules.set(cid, module);
    return module;
  }
}
