import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isGenesisError } from '../../src/core/index.ts';
import { DirModuleSource, KernelRunner, type ModuleSource } from '../../src/fabric/index.ts';

const examples = fileURLToPath(new URL('../../examples/kernel', import.meta.url));

function instance(module: string, id = 'web/0') {
  return { id, workload: 'web', replica: 0, module, cpuMillis: 100, memoryMb: 1, capabilities: [] };
}

function cidOf(source: DirModuleSource, file: string): string {
  const hit = source.entries().find(([, path]) => path.endsWith(`/${file}`));
  if (hit === undefined) throw new Error(`${file} not indexed`);
  return hit[0];
}

describe('KernelRunner: placements run as kernel domains', () => {
  it('spawns a domain for an instance whose module is found by CID, and kills it on stop', async () => {
    const source = new DirModuleSource([examples]);
    const runner = new KernelRunner(source);
    const cid = cidOf(source, 'root.wasm');
    await runner.start(instance(cid));
    await runner.start(instance(cid));
    expect(runner.running()).toEqual(['web/0']);
    expect(runner.kernel.snapshot().domainsLive).toBe(1);
    await runner.start(instance(cid, 'web/1'));
    expect(runner.kernel.snapshot().domainsLive).toBe(2);
    await runner.stop('web/0');
    expect(runner.running()).toEqual(['web/1']);
    expect(runner.kernel.snapshot().domainsLive).toBe(1);
  });

  it('refuses a module it does not have', async () => {
    const runner = new KernelRunner(new DirModuleSource([examples]));
    await expect(
      runner.start(instance('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e')),
    ).rejects.toSatisfy((e: unknown) => isGenesisError(e, 'FABRIC_MODULE_UNAVAILABLE'));
    expect(runner.running()).toEqual([]);
  });

  it('refuses bytes that do not hash to the CID, and bytes that are not a module', async () => {
    const good = new DirModuleSource([examples]);
    const cid = cidOf(good, 'root.wasm');
    const lying: ModuleSource = { get: () => good.get(cidOf(good, 'echo.wasm')) };
    await expect(new KernelRunner(lying).start(instance(cid))).rejects.toSatisfy((e: unknown) =>
      isGenesisError(e, 'FABRIC_MODULE_REJECTED'),
    );
  });
});
