/**
 * nats-server configuration for every server of a topology. The hierarchy maps onto NATS:
 *
 *  - each region, hub and pod runs one nats-server named after its node (`server_name`), so a
 *    client learns which pod it reached from the server's INFO, with no configuration;
 *  - a child server connects outward to its parent as a **leaf node** (works behind NAT and
 *    firewalls, and the child keeps serving its own clients when the uplink is gone);
 *  - regions join through **gateways** into one supercluster (the global tier); a DTN-only
 *    region has no gateway: it is reached through the dtn layer, never NATS;
 *  - every server runs JetStream with its own **domain** (its name, dots as dashes), so each
 *    leaf island keeps durable state (membership and desired state in KV buckets) while
 *    disconnected, and `$JS.<domain>.API` reaches it from elsewhere.
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

/** One generated server. */
export interface NatsServerPlan {
  /** Topology node the server belongs to (region, hub or pod). */
  readonly node: string;
  readonly level: 'region' | 'hub' | 'pod';
  /** Parent server's node name, when this server is a leaf. */
  readonly parent: string | undefined;
  /** JetStream domain, undefined for a gateway (region) server, which routes only. */
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
   * (through a NAT, a relay, or a test's cuttable proxy). */
  readonly leafRemoteOverrides?: ReadonlyMap<string, string>;
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

/** Nodes that run a nats-server: regions, hubs and pods (tiles are clients of their pod). */
export function serverNodes(topology: Topology): TopologyNode[] {
  return [...topology.nodes.values()].filter(
    (n) => n.level === 'region' || n.level === 'hub' || n.level === 'pod',
  );
}

function q(s: string): string {
  return JSON.stringify(s);
}

/** Plans every server of a topology: ports, domains and config text. */
export function planNatsServers(topology: Topology, options: NatsConfigOptions): NatsServerPlan[] {
  const nodes = serverNodes(topology);
  if (nodes.length > NATS_SERVERS_MAX) {
    throw new FabricError(
      FabricErrorCode.ConfigInvalid,
      `topology needs ${nodes.length} servers, more than NATS_SERVERS_MAX (${NATS_SERVERS_MAX})`,
    );
  }
  const base = options.basePort ?? NATS_BASE_PORT_DEFAULT;
  if (
    !Number.isInteger(base) ||
    base < 1024 ||
    base + NATS_HTTP_PORT_OFFSET + nodes.length > 65_535
  ) {
    throw new FabricError(
      FabricErrorCode.ConfigInvalid,
      `--base-port ${base} leaves no room for ${nodes.length} servers`,
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
  nodes.forEach((n, i) => {
    const explicit = options.ports?.get(n.name);
    const hasChildren = n.level !== 'pod';
    const isGateway = n.level === 'region' && !topology.dtnRegions.includes(n.name);
    ports.set(
      n.name,
      explicit ?? {
        client: base + i,
        leaf: hasChildren ? base + NATS_LEAF_PORT_OFFSET + i : undefined,
        gateway: isGateway ? base + NATS_GATEWAY_PORT_OFFSET + i : undefined,
        http: monitoring ? base + NATS_HTTP_PORT_OFFSET + i : undefined,
      },
    );
  });
  const hostOf = (name: string): string => options.hosts?.[name] ?? options.host ?? '127.0.0.1';
  const gatewayRegions = nodes.filter(
    (n) => n.level === 'region' && ports.get(n.name)?.gateway !== undefined,
  );
  return nodes.map((n) => {
    const p = ports.get(n.name) as NatsServerPorts;
    const host = hostOf(n.name);
    const domain = jetstreamDomain(n.name);
    const storeDir = `${options.storeRoot}/${n.name}`;
    const parent = n.level === 'region' ? undefined : n.parent;
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
    // nats-server 2.9 turns JetStream into clustered mode as soon as a gateway is configured,
    // which needs routes (a 3-server region cluster). A generated region is one server, so it
    // routes only; durable state lives in the hub and pod domains below it.
    const jetstream = p.gateway === undefined;
    if (jetstream)
      lines.push(
        'jetstream {',
        `  store_dir: ${q(storeDir)}`,
        `  domain: ${q(domain)}`,
        `  max_memory_store: ${JETSTREAM_MEMORY_BYTES_MAX}`,
        `  max_file_store: ${JETSTREAM_FILE_BYTES_MAX}`,
        '}',
      );
    const leafLines: string[] = [];
    if (p.leaf !== undefined) {
      // Children must dial only the address they were given (a NAT, a relay): do not let them
      // learn and bypass to this server's own listen address.
      leafLines.push(`  listen: ${q(`${host}:${p.leaf}`)}`, '  no_advertise: true');
    }
    if (parent !== undefined) {
      const pp = ports.get(parent);
      if (pp?.leaf === undefined)
        throw new FabricError(
          FabricErrorCode.ConfigInvalid,
          `parent ${parent} of ${n.name} has no leafnode listener`,
        );
      // Short reconnect so a healed uplink is used again within a second or two.
      const target = options.leafRemoteOverrides?.get(n.name) ?? `${hostOf(parent)}:${pp.leaf}`;
      leafLines.push(
        '  reconnect: 1',
        `  remotes: [ { url: ${q(`nats-leaf://leaf:${leafPassword}@${target}`)}, account: "GENESIS" } ]`,
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
      level: n.level as 'region' | 'hub' | 'pod',
      parent,
      domain: jetstream ? domain : undefined,
      ports: p,
      clientUrl: `nats://${host}:${p.client}`,
      storeDir,
      fileName: `${n.name}.conf`,
      config: `${lines.join('\n')}\n`,
    };
  });
}
