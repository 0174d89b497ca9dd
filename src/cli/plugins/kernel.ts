/**
 * The kernel in `genesis up`: every tile boots a {@link Kernel} with a root domain (the
 * precompiled examples/kernel/root.wasm, so boot does no WAT parsing). The root domain serves
 * the tile's endpoint; the transport subject `genesis.kernel.<node>.call` bridges requests
 * (JSON `{label, mr0}`) into it, and a timer sends it one "tick" per second. The kernel's plain
 * counters are mirrored into the fabric's Prometheus registry.
 */
import { readFileSync } from 'node:fs';
import type { NodeContext, NodeService, TimerHandle } from '../../core/index.ts';
import { gauge } from '../../core/index.ts';
import { type Cap, Kernel, type KernelModule, loadModule } from '../../kernel/index.ts';
import type { FabricPlugin, FabricPluginFactory } from '../plugin.ts';

/** Period of the tick message each root domain receives. */
const KERNEL_TICK_MS = 1_000;
/** Bound on a bridged request body. */
const KERNEL_BRIDGE_BYTES_MAX = 4096;

class KernelService implements NodeService {
  readonly name = 'kernel';
  kernel: Kernel | undefined;
  private ep: Cap | undefined;
  private timer: TimerHandle | undefined;
  private ctx: NodeContext | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly module: KernelModule) {}

  start(ctx: NodeContext): void {
    this.ctx = ctx;
    const kernel = new Kernel({
      domainsMax: 1024,
      log: (d, t) => ctx.logger.debug({ domain: d.id }, t),
    });
    const ep = kernel.createEndpoint();
    const root = kernel.spawn(this.module, { name: `${ctx.name}/root` });
    kernel.bindReceiver(root.domain, ep);
    this.kernel = kernel;
    this.ep = ep;
    const sub = ctx.transport.subscribe(`genesis.kernel.${ctx.name}.call`, (msg) => {
      msg.respond(Buffer.from(JSON.stringify(this.bridge(msg.data))));
    });
    this.unsubscribe = () => sub.unsubscribe();
    this.timer = ctx.clock.setInterval(() => this.tick(), KERNEL_TICK_MS);
  }

  private bridge(data: Uint8Array): unknown {
    const k = this.kernel;
    if (k === undefined || this.ep === undefined) return { error: 'stopped' };
    try {
      if (data.length > KERNEL_BRIDGE_BYTES_MAX) return { error: 'request too large' };
      const req = JSON.parse(Buffer.from(data).toString('utf8')) as {
        label?: unknown;
        mr0?: unknown;
      };
      const label = Number(req.label ?? 0);
      if (!Number.isInteger(label) || label < 0 || label >= 0xff00) return { error: 'bad label' };
      const r = k.call(this.ep, label, BigInt(String(req.mr0 ?? 0)));
      k.run();
      return { label: r.label, mr0: r.mr0.toString() };
    } catch (e) {
      return { error: e instanceof Error ? e.message : String(e) };
    }
  }

  private tick(): void {
    const k = this.kernel;
    if (k === undefined || this.ep === undefined || this.ctx === undefined) return;
    k.send(this.ep, 1);
    k.run();
    const s = k.snapshot();
    const m = this.ctx.metrics;
    const labels = { node: this.ctx.name };
    gauge(m, 'genesis_kernel_domains', 'live domains', ['node']).set(labels, s.domainsLive);
    gauge(m, 'genesis_kernel_faults', 'faults since boot', ['node']).set(labels, s.faults);
    gauge(m, 'genesis_kernel_objects', 'live kernel objects', ['node']).set(labels, s.objectsLive);
    gauge(m, 'genesis_kernel_ipc_messages', 'IPC messages since boot', ['node']).set(
      labels,
      s.ipcMessages,
    );
    gauge(m, 'genesis_kernel_activations', 'activations since boot', ['node']).set(
      labels,
      s.activations,
    );
    gauge(m, 'genesis_kernel_fuel_units', 'kernel time in fuel units', ['node']).set(
      labels,
      s.nowUnits,
    );
  }

  stop(): void {
    if (this.timer !== undefined) this.ctx?.clock.clearTimer(this.timer);
    this.unsubscribe?.();
    this.kernel = undefined;
  }

  status(): Readonly<Record<string, number>> {
    const s = this.kernel?.stats;
    return { domains: s?.domainsLive ?? 0, faults: s?.faults ?? 0 };
  }
}

/** The kernel plugin of `genesis up`. */
export const kernelPlugin: FabricPluginFactory = (): FabricPlugin => {
  const services: KernelService[] = [];
  return {
    name: 'kernel',
    attach(fabric) {
      const bytes = readFileSync(new URL('../../../examples/kernel/root.wasm', import.meta.url));
      const module = loadModule(new Uint8Array(bytes), 'root');
      for (const node of fabric.nodesAt('tile')) {
        const svc = new KernelService(module);
        services.push(svc);
        node.attach(svc);
      }
    },
    status() {
      let domains = 0;
      let faults = 0;
      for (const s of services) {
        const st = s.status();
        domains += st.domains ?? 0;
        faults += st.faults ?? 0;
      }
      return { kernels: services.length, domains, faults };
    },
  };
};
