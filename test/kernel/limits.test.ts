import { describe, expect, it } from 'vitest';
import { isKernelError, Kernel, KernelErrorCode, Rights } from '../../src/kernel/index.ts';
import { example, wat } from './helpers.ts';

describe('kernel bounds and telemetry', () => {
  it('refuses domains past the live-domain bound with a typed error, and accepts again after a kill', async () => {
    const k = new Kernel({ domainsMax: 3 });
    const m = await example('echo');
    const ds = [k.spawn(m), k.spawn(m), k.spawn(m)];
    let err: unknown;
    try {
      k.spawn(m);
    } catch (e) {
      err = e;
    }
    expect(isKernelError(err, KernelErrorCode.DOMAINS_EXHAUSTED)).toBe(true);
    k.kill((ds[0] as (typeof ds)[number]).domain);
    expect(k.spawn(m).domain.state).toBe('live');
  });

  it('retypes memory from quotas and refuses what a quota cannot cover', async () => {
    const k = new Kernel({ memoryBytes: 4 * 65536 });
    const m = await wat('(module (memory 2))');
    k.spawn(m, { memoryBytes: 2 * 65536 });
    expect(() => k.spawn(m, { memoryBytes: 3 * 65536 })).toThrow(
      expect.objectContaining({ code: KernelErrorCode.QUOTA_EXCEEDED }),
    );
    expect(() => k.spawn(m, { memoryBytes: 65536 })).toThrow(
      expect.objectContaining({ code: KernelErrorCode.QUOTA_EXCEEDED }),
    );
    expect(() => k.spawn(m, { memoryBytes: 1000 })).toThrow(
      expect.objectContaining({ code: KernelErrorCode.BAD_ARGUMENT }),
    );
    expect(k.rootQuota.bytesUsed).toBe(2 * 65536);
  });

  it('exposes per-domain and kernel-wide counters', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const server = k.spawn(await example('counter'));
    k.bindReceiver(server.domain, ep);
    const client = k.spawn(await example('client'), {
      caps: [k.mint(ep, Rights.WRITE | Rights.GRANT_REPLY)],
    });
    k.spawn(await wat('(module (func (export "genesis_main") unreachable))'));
    k.run();
    const s = k.snapshot();
    expect(s.domainsLive).toBe(3);
    expect(s.faults).toBe(1);
    expect(s.ipcFastpath).toBe(10);
    expect(s.activations).toBe(2 + 10);
    expect(s.schedLatencyBuckets.reduce((a, b) => a + b, 0)).toBe(2);
    expect(s.capsLive).toBeGreaterThanOrEqual(5);
    const per = k.domainStats().find((d) => d.id === client.domain.id);
    expect(per?.ipcSent).toBe(10);
    expect(per?.fuelUsed).toBeGreaterThan(0);
    expect(per?.memoryBytes).toBe(65536);
  });
});
