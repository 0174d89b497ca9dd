/**
 * nats-server configuration for every server of a topology. The hierarchy maps onto NATS:
 *
 *  - each region, hub and pod runs one nats-server named after its node (`server_name`), so a
 *    client learns which pod it reached from the server's INFO, with no configuration;
 *  - a child server connects outward to its parent as a **leaf node** (works behind NAT and
 *    firewalls, and the child keeps serving its own clients when the uplink is gone);
 *  - regions join through **gateways** into one supercluster (the global tier); a DTN-only
 *    region has no gateway: it is reached through the dtn layer, never NATS;
 *  - every hub and pod server runs JetStream with its own **domain** (its name, dots as dashes),
 *    so each leaf island keeps durable state (membership and desired state in KV buckets) while
 *    disconnected, and `$JS.<domain>.API` reaches it from elsewhere;
 *  - a gateway region cannot run JetStream itself on 2.9.10 (a gateway turns JetStream into
 *    clustered mode, and clustered JetStream spans the whole supercluster with one meta group,
 *    see docs/fabric.md), so each such region gets a small **region store** server beside it:
 *    a JetStream-only leaf of the region server with domain = the region's name, an island of
 *    its own like the hubs and pods. A DTN-only region (no gateway) runs JetStream itself;
 *  - a parent **advertises** exactly the address its children dial (`leafnodes.advertise`):
 *    nats-server (2.9 up to at least 2.14) always puts the parent's leafnode URL into the INFO
 *    it sends a child, whatever `no_advertise` says (that flag only concerns cluster peers), and
 *    the child adds it to its reconnect list, so without `advertise` a child behind a relay or a
 *    NAT reconnects straight to the listen address when its path breaks.
 *
 * Only nats-server 2.9.10 features are used (the Debian package); see docs/fabric.md for the
 * newer ones we would like.
 */
import type { Topology, TopologyNode } from '../core/index.ts';
import { FabricError, FabricErrorCode } from './errors.ts';

/** Default first port of the generated layout (clients; +1000 leaf, +2000 gateway, +3000 HTTP). */
export const NATS_BASE_PORT_DEFAULT = 14_222;
/** Offset of the leafnode listener from the client port block. */
export const NATS_LEAF_PORT_OFFSET = 1_000;
/** Offset of the gateway listener from the client port block. */
export const NATS_GATEWAY_PORT_OFFSET = 2_000;
/** Offset of the monitoring listener from the client port block. */
export const NATS_HTTP_PORT_OFFSET = 3_000;
/** Largest number of servers one generated layout holds (port blocks must not overlap). */
export const NATS_SERVERS_MAX = 1_000;
/** JetStream memory store per server. */
export const JETSTREAM_MEMORY_BYTES_MAX = 64 * 1024 * 1024;
/** JetStream file store per server. */
export const JETSTREAM_FILE_BYTES_MAX = 1024 * 1024 * 1024;

/** Ports of one server. */
export interface NatsServerPorts {
  readonly client: number;
  readonly leaf: number | undefined;
  readonly gateway: number | undefined;
  readonly http: number | undefined;
}

/** Kind of a generated server: one per region/hub/pod node, plus region stores. */
export type NatsServerLevel = 'region' | 'hub' | 'pod' | 'store';

/** One generated server. */
export interface NatsServerPlan {
  /** Server name and key of the plan: the topology node (region, hub or pod) it serves, or
   * `<region>-js` for a region store ({@link regionStoreName}). */
  readonly node: string;
  readonly level: NatsServerLevel;
  /** Parent server's node name, when this server is a leaf. */
  readonly parent: string | undefined;
  /** JetStream domain, undefined for a gateway (region) server, which routes only (its
   * region's domain is served by the region store). */
  readonly domain: string | undefined;
  readonly ports: NatsServerPorts;
  readonly clientUrl: string;
  readonly storeDir: string;
  /** File name under the output dir. */
  readonly fileName: string;
  /** The config file text. */
  readonly config: string;
}

/** Options of {@link planNatsServers}. */
export interface NatsConfigOptions {
  /** Host the servers listen on and dial (default 127.0.0.1, one machine). */
  readonly host?: string;
  /** Per-node host overrides, for several machines (node name → host). */
  readonly hosts?: Readonly<Record<string, string>>;
  readonly basePort?: number;
  /** Explicit ports (tests use free ports); overrides basePort for the nodes listed. */
  readonly ports?: ReadonlyMap<string, NatsServerPorts>;
  /** Root of JetStream store dirs (each server gets `<root>/<node>`). */
  readonly storeRoot: string;
  /** Per-node override of the `host:port` a child dials for its parent's leafnode listener
   * (through a NAT, a relay, or a test's cuttable proxy). Keys are child node names (a region
   * store's key is {@link regionStoreName}). */
  readonly leafRemoteOverrides?: ReadonlyMap<string, string>;
  /** Per-parent `host:port` the parent advertises to its leaf children (its public address).
   * Default: the one override all its children share, else its own leafnode listen address. */
  readonly leafAdvertise?: ReadonlyMap<string, string>;
  /** Give each gateway region a region-store server with the region's JetStream domain
   * (default true). */
  readonly regionStores?: boolean;
  /** Password of the leaf user child servers log in with (generate one per deployment). */
  readonly leafPassword?: string;
  /** Password of the system account user. */
  readonly systemPassword?: string;
  /** Serve the HTTP monitoring endpoint (default true). */
  readonly monitoring?: boolean;
}

/** JetStream domain of a node: its name with dots as dashes (domains are single tokens). */
export function jetstreamDomain(node: string): string {
  return node.replaceAll('.', '-');
}

/** Server name of a gateway region's JetStream store (a leaf of the region server). */
export function regionStoreName(region: string): string {
  return `${region}-js`;
}

/** Nodes that run a nats-server: regions, hubs and pods (tiles are clients of their pod). */
export function serverNodes(topology: Topology): TopologyNode[] {
  return [...topology.nodes.values()].filter(
    (n) => n.level === 'region' || n.level === 'hub' || n.level === 'pod',
  );
}

function q(s: string): string {
  return JSON.stringify(s);
}

/** One server to generate, before ports and text. */
interface ServerSpec {
  readonly name: string;
  readonly level: NatsServerLevel;
  readonly parent: string | undefined;
  /** JetStream domain, or undefined for a routing-only gateway region. */
  readonly domain: string | undefined;
  readonly leafListener: boolean;
  readonly gateway: boolean;
}

function serverSpecs(
  topology: Topology,
  regionStores: boolean,
  explicitPorts: ReadonlyMap<string, NatsServerPorts> | undefined,
): ServerSpec[] {
  const specs: ServerSpec[] = [];
  const stores: ServerSpec[] = [];
  for (const n of serverNodes(topology)) {
    // A region is a gateway unless it is DTN-only or its explicit ports give it no gateway
    // listener (then it is a region on its own, and runs JetStream itself).
    const explicit = explicitPorts?.get(n.name);
    const gateway =
      n.level === 'region' &&
      !topology.dtnRegions.includes(n.name) &&
      (explicit === undefined || explicit.gateway !== undefined);
    specs.push({
      name: n.name,
      level: n.level as 'region' | 'hub' | 'pod',
      parent: n.level === 'region' ? undefined : n.parent,
      // nats-server 2.9 turns JetStream into clustered mode as soon as a gateway is configured
      // (see docs/fabric.md for what that does): a gateway region routes only, and its domain
      // lives on the region store below.
      domain: gateway ? undefined : jetstreamDomain(n.name),
      leafListener: n.level !== 'pod',
      gateway,
    });
    if (gateway && regionStores)
      stores.push({
        name: regionStoreName(n.name),
        level: 'store',
        parent: n.name,
        domain: jetstreamDomain(n.name),
        leafListener: false,
        gateway: false,
      });
  }
  // Stores last, so the port blocks of region/hub/pod servers do not move when they are added.
  return [...specs, ...stores];
}

/** Plans every server of a topology: ports, domains and config text. */
export function planNatsServers(topology: Topology, options: NatsConfigOptions): NatsServerPlan[] {
  const specs = serverSpecs(topology, options.regionStores ?? true, options.ports);
  if (specs.length > NATS_SERVERS_MAX) {
    throw new FabricError(
      FabricErrorCode.ConfigInvalid,
      `topology needs ${specs.length} servers, more than NATS_SERVERS_MAX (${NATS_SERVERS_MAX})`,
    );
  }
  const base = options.basePort ?? NATS_BASE_PORT_DEFAULT;
  if (
    !Number.isInteger(base) ||
    base < 1024 ||
    base + NATS_HTTP_PORT_OFFSET + specs.length > 65_535
  ) {
    throw new FabricError(
      FabricErrorCode.ConfigInvalid,
      `--base-port ${base} leaves no room for ${specs.length} servers`,
      { details: { field: 'basePort' } },
    );
  }
  const monitoring = options.monitoring ?? true;
  const leafPassword = options.leafPassword ?? 'genesis-leaf';
  const sysPassword = options.systemPassword ?? 'genesis-sys';
  for (const [k, v] of [
    ['leafPassword', leafPassword],
    ['systemPassword', sysPassword],
  ] as const) {
    if (!/^[A-Za-z0-9_-]{8,128}$/.test(v))
      throw new FabricError(FabricErrorCode.ConfigInvalid, `${k} must be 8-128 of [A-Za-z0-9_-]`, {
        details: { field: k },
      });
  }
  const ports = new Map<string, NatsServerPorts>();
  specs.forEach((n, i) => {
    ports.set(
      n.name,
      options.ports?.get(n.name) ?? {
        client: base + i,
        leaf: n.leafListener ? base + NATS_LEAF_PORT_OFFSET + i : undefined,
        gateway: n.gateway ? base + NATS_GATEWAY_PORT_OFFSET + i : undefined,
        http: monitoring ? base + NATS_HTTP_PORT_OFFSET + i : undefined,
      },
    );
  });
  const hostOf = (name: string): string =>
    options.hosts?.[name] ??
    options.hosts?.[storeRegion(specs, name)] ??
    options.host ??
    '127.0.0.1';
  const dialTarget = (child: string, parent: string): string => {
    const pp = ports.get(parent);
    if (pp?.leaf === undefined)
      throw new FabricError(
        FabricErrorCode.ConfigInvalid,
        `parent ${parent} of ${child} has no leafnode listener`,
      );
    return options.leafRemoteOverrides?.get(child) ?? `${hostOf(parent)}:${pp.leaf}`;
  };
  const gatewayRegions = specs.filter((n) => n.gateway && ports.get(n.name)?.gateway !== undefined);
  return specs.map((n) => {
    const p = ports.get(n.name) as NatsServerPorts;
    const host = hostOf(n.name);
    const storeDir = `${options.storeRoot}/${n.name}`;
    const lines: string[] = [
      `# Genesis ${n.level} ${n.name} (generated by genesis topology nats-config)`,
      `server_name: ${q(n.name)}`,
      `listen: ${q(`${host}:${p.client}`)}`,
      // The transport bounds messages at 1 MiB; the server agrees.
      'max_payload: 1048576',
      'ping_interval: "5s"',
      'ping_max: 2',
      // Leaf nodes together with gateways require a system account (nats-server 2.9). Clients
      // without credentials land in GENESIS (no_auth_user); leaf links authenticate as the
      // leaf user so an arbitrary client cannot pose as a child server.
      'accounts {',
      '  SYS { users = [ { user: "sys", password: ' + q(sysPassword) + ' } ] }',
      '  GENESIS {',
      '    jetstream: enabled',
      '    users = [ { user: "genesis", password: "genesis" }, { user: "leaf", password: ' +
        q(leafPassword) +
        ' } ]',
      '  }',
      '}',
      'system_account: SYS',
      'no_auth_user: genesis',
    ];
    if (p.http !== undefined) lines.push(`http: ${q(`${host}:${p.http}`)}`);
    if (n.domain !== undefined)
      lines.push(
        'jetstream {',
        `  store_dir: ${q(storeDir)}`,
        `  domain: ${q(n.domain)}`,
        `  max_memory_store: ${JETSTREAM_MEMORY_BYTES_MAX}`,
        `  max_file_store: ${JETSTREAM_FILE_BYTES_MAX}`,
        '}',
      );
    const leafLines: string[] = [];
    if (p.leaf !== undefined) {
      // Advertise exactly the address children dial. nats-server always sends its own leafnode
      // URL in the INFO to a child (`no_advertise` only hides it from cluster peers), and the
      // child adds that URL to its reconnect list: without this line a child that reaches us
      // through a NAT or relay would, once that path breaks, reconnect to our listen address.
      const children = specs.filter((c) => c.parent === n.name);
      const dialled = new Set(children.map((c) => dialTarget(c.name, n.name)));
      const advertise =
        options.leafAdvertise?.get(n.name) ??
        (dialled.size === 1 ? ([...dialled][0] as string) : `${host}:${p.leaf}`);
      leafLines.push(`  listen: ${q(`${host}:${p.leaf}`)}`);
      // A wildcard is no address to dial: then nats-server advertises its interface addresses.
      if (!isWildcardHostPort(advertise)) leafLines.push(`  advertise: ${q(advertise)}`);
      leafLines.push('  no_advertise: true');
    }
    if (n.parent !== undefined) {
      // Short reconnect so a healed uplink is used again within a second or two.
      leafLines.push(
        '  reconnect: 1',
        `  remotes: [ { url: ${q(`nats-leaf://leaf:${leafPassword}@${dialTarget(n.name, n.parent)}`)}, account: "GENESIS" } ]`,
      );
    }
    if (leafLines.length > 0) lines.push('leafnodes {', ...leafLines, '}');
    if (p.gateway !== undefined) {
      const others = gatewayRegions.filter((r) => r.name !== n.name);
      lines.push(
        'gateway {',
        `  name: ${q(n.name)}`,
        `  listen: ${q(`${host}:${p.gateway}`)}`,
        '  reject_unknown_cluster: true',
        '  gateways: [',
      );
      for (const o of others) {
        const op = ports.get(o.name) as NatsServerPorts;
        lines.push(
          `    { name: ${q(o.name)}, url: ${q(`nats://${hostOf(o.name)}:${op.gateway}`)} }`,
        );
      }
      lines.push('  ]', '}');
    }
    return {
      node: n.name,
      level: n.level,
      parent: n.parent,
      domain: n.domain,
      ports: p,
      clientUrl: `nats://${host}:${p.client}`,
      storeDir,
      fileName: `${n.name}.conf`,
      config: `${lines.join('\n')}\n`,
    };
  });
}

/** True for `0.0.0.0:port` / `[::]:port` style addresses (listen-anywhere, not dialable). */
function isWildcardHostPort(hostPort: string): boolean {
  const host = hostPort.slice(0, hostPort.lastIndexOf(':'));
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
}

/** The region a store serves (a store runs beside its region, on its host by default). */
function storeRegion(specs: readonly ServerSpec[], name: string): string {
  const s = specs.find((x) => x.name === name);
  return s?.level === 'store' && s.parent !== undefined ? s.parent : name;
}
