/**
 * The example modules: sources still compile to the committed binaries (rebuild with
 * `node bin/run-ts.js examples/kernel/build.ts`), and the AssemblyScript examples built with the
 * SDK run as domains: client → counter, driver against a test device, a preemptible worker.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Kernel, loadModule, Rights, TestDevice } from '../../src/kernel/index.ts';
import { makePreemptible, watToWasm } from '../../src/toolchain/index.ts';

const dir = new URL('../../examples/kernel/', import.meta.url);
const asDir = new URL('as/', dir);
const committed = (url: URL): Uint8Array => new Uint8Array(readFileSync(url));
const asModule = (name: string) => loadModule(committed(new URL(`${name}.wasm`, asDir)), name);

describe('example modules', () => {
  it('every .wat example assembles to its committed .wasm', async () => {
    const wats = readdirSync(dir).filter((f) => f.endsWith('.wat'));
    expect(wats.length).toBeGreaterThanOrEqual(7);
    for (const f of wats) {
      const bytes = await watToWasm(readFileSync(new URL(f, dir), 'utf8'), f);
      expect(
        Buffer.from(bytes).equals(Buffer.from(committed(new URL(f.replace('.wat', '.wasm'), dir)))),
        f,
      ).toBe(true);
    }
  });

  it('AssemblyScript client calls the AssemblyScript counter', () => {
    const logs: string[] = [];
    const k = new Kernel({ log: (_d, t) => logs.push(t) });
    const ep = k.createEndpoint();
    const counter = k.spawn(asModule('counter'));
    k.bindReceiver(counter.domain, ep);
    const client = k.spawn(asModule('client'), {
      caps: [k.mint(ep, Rights.WRITE | Rights.GRANT_REPLY)],
    });
    k.run();
    expect(client.domain.state).toBe('live');
    expect(logs).toEqual(['total 10']);
  });

  it('AssemblyScript driver serves an IRQ from the test device', () => {
    const k = new Kernel();
    const dev = new TestDevice();
    dev.registers[2] = 5n;
    dev.onDoorbell = () => k.raiseIrq(1);
    const d = k.spawn(asModule('driver'), {
      caps: [k.createDevice(dev), k.createIrq(1), k.createNotification()],
    });
    k.run();
    expect(d.domain.state).toBe('live');
    expect(dev.output).toEqual([1005n]);
  });

  it('AssemblyScript worker runs preemptibly and finds 17984 primes below 200000', async () => {
    const logs: string[] = [];
    const k = new Kernel({ timesliceUnits: 500_000, log: (_d, t) => logs.push(t) });
    const mod = loadModule(
      await makePreemptible(committed(new URL('worker.wasm', asDir))),
      'worker',
    );
    const w = k.spawn(mod, {
      budgetUnits: 100_000_000,
      periodUnits: 100_000_000,
      memoryBytes: 16 * 65536,
    });
    k.run();
    expect(w.domain.state).toBe('live');
    expect(w.domain.stats.preemptions).toBeGreaterThan(0);
    expect(logs).toEqual(['primes 17984']);
  });
});
