/**
 * The fabric's shape: global → region → hub → pod → tile, plus regions reached only over DTN
 * links (the interplanetary tier). Names are stable and hierarchical — `eu1.h1.p2.t03` is tile 3
 * of pod 2 of hub 1 of region eu1 — so a node's name is also the subject prefix it owns.
 *
 * A topology comes from a YAML/JSON file validated by a zod schema (errors name the field and
 * line) or from size flags (`--regions 1 --hubs 2 --pods 2 --tiles 4`).
 */
import { readFileSync, statSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { GenesisError } from './errors.ts';
import { TOPOLOGY_FILE_BYTES_MAX, TOPOLOGY_NODES_MAX } from './limits.ts';

/** Levels of the hierarchy, top first. */
export const LEVELS = ['global', 'region', 'hub', 'pod', 'tile'] as const;
/** One level of the hierarchy. */
export type Level = (typeof LEVELS)[number];

/** A member of the topology. */
export interface TopologyNode {
  readonly name: string;
  readonly level: Level;
  /** Parent's name; undefined for the global node. */
  readonly parent: string | undefined;
  readonly children: readonly string[];
  /** Region this node belongs to (the node itself for a region; undefined for global). */
  readonly region: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
}

/** A scheduled DTN contact window between two regions (times in seconds from fabric start). */
export interface DtnContact {
  readonly startSec: number;
  readonly endSec: number;
  readonly rateBitsPerSec: number;
}

/** A DTN link joining two regions with a one-way light time. */
export interface DtnLink {
  readonly from: string;
  readonly to: string;
  readonly owltSec: number;
  readonly contacts: readonly DtnContact[];
}

/** A validated, indexed topology. */
export interface Topology {
  readonly name: string;
  readonly nodes: ReadonlyMap<string, TopologyNode>;
  /** Regions joined to the rest only by DTN links. */
  readonly dtnRegions: readonly string[];
  readonly dtnLinks: readonly DtnLink[];
}

const NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
const labels = z.record(z.string(), z.string()).default({});
const count = (max: number) => z.number().int().min(1).max(max);

const podSchema = z.strictObject({
  name: z.string().regex(NAME_RE).optional(),
  tiles: z.union([
    count(4096),
    z.array(z.strictObject({ name: z.string().regex(NAME_RE), labels })),
  ]),
  labels,
});
const hubSchema = z.strictObject({
  name: z.string().regex(NAME_RE).optional(),
  pods: z.array(podSchema).min(1).max(1024),
  labels,
});
const regionSchema = z.strictObject({
  name: z.string().regex(NAME_RE),
  hubs: z.array(hubSchema).min(1).max(1024),
  dtn: z.boolean().default(false),
  labels,
});
const contactSchema = z.strictObject({
  startSec: z.number().min(0),
  endSec: z.number().min(0),
  rateBitsPerSec: z.number().positive(),
});
const linkSchema = z.strictObject({
  from: z.string().regex(NAME_RE),
  to: z.string().regex(NAME_RE),
  owltSec: z.number().min(0),
  contacts: z.array(contactSchema).max(100_000).default([]),
});

/** The schema of a topology file. */
export const topologyFileSchema = z.strictObject({
  name: z.string().min(1).max(64).default('genesis'),
  regions: z.array(regionSchema).min(1).max(64),
  dtnLinks: z.array(linkSchema).max(1024).default([]),
});

/** The parsed (not yet indexed) form of a topology file. */
export type TopologyFile = z.infer<typeof topologyFileSchema>;

/** Stable codes of topology errors. */
export const TopologyErrorCode = {
  FileUnreadable: 'TOPOLOGY_FILE_UNREADABLE',
  FileTooLarge: 'TOPOLOGY_FILE_TOO_LARGE',
  Syntax: 'TOPOLOGY_SYNTAX',
  Invalid: 'TOPOLOGY_INVALID',
  TooLarge: 'TOPOLOGY_TOO_LARGE',
} as const;

/** Options for {@link generateTopology}. */
export interface TopologySize {
  readonly regions: number;
  readonly hubs: number;
  readonly pods: number;
  readonly tiles: number;
  /** Adds a DTN-only region named `mars` linked to the first region. */
  readonly interplanetary?: boolean;
}

/** The default topology of `genesis up`: 1 region, 2 hubs, 2 pods each, 4 tiles each. */
export const DEFAULT_TOPOLOGY_SIZE: TopologySize = { regions: 1, hubs: 2, pods: 2, tiles: 4 };

const REGION_NAMES = ['eu1', 'us1', 'ap1', 'sa1', 'af1', 'me1', 'oc1', 'eu2'];

/** Builds a topology file from size flags. */
export function generateTopologyFile(size: TopologySize): TopologyFile {
  for (const [k, v] of Object.entries(size)) {
    if (k !== 'interplanetary' && (!Number.isInteger(v) || (v as number) < 1)) {
      throw new GenesisError(
        TopologyErrorCode.Invalid,
        `--${k} must be a positive integer, got ${String(v)}`,
        {
          details: { field: k },
        },
      );
    }
  }
  const region = (name: string, dtn: boolean) => ({
    name,
    dtn,
    labels: {},
    hubs: Array.from({ length: size.hubs }, () => ({
      labels: {},
      pods: Array.from({ length: size.pods }, () => ({ tiles: size.tiles, labels: {} })),
    })),
  });
  const regions = Array.from({ length: size.regions }, (_, i) =>
    region(REGION_NAMES[i] ?? `r${i + 1}`, false),
  );
  const dtnLinks: TopologyFile['dtnLinks'] = [];
  if (size.interplanetary === true) {
    regions.push({ ...region('mars', true), hubs: region('mars', true).hubs.slice(0, 1) });
    // Mars is 3 to 22 light-minutes away; 4 minutes and a contact every 20 minutes is a
    // realistic relay schedule that still shows store-and-forward in a short run.
    const contacts = Array.from({ length: 72 }, (_, i) => ({
      startSec: i * 1200,
      endSec: i * 1200 + 600,
      rateBitsPerSec: 2_000_000,
    }));
    dtnLinks.push({ from: regions[0]?.name ?? 'eu1', to: 'mars', owltSec: 240, contacts });
  }
  return { name: 'genesis', regions, dtnLinks };
}

/** Builds an indexed topology from size flags. */
export function generateTopology(size: TopologySize = DEFAULT_TOPOLOGY_SIZE): Topology {
  return buildTopology(generateTopologyFile(size));
}

/**
 * Loads and validates a topology file (YAML or JSON).
 * @throws {GenesisError} with a TOPOLOGY_* code naming the file, field and line.
 */
export function loadTopologyFile(path: string): Topology {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > TOPOLOGY_FILE_BYTES_MAX) {
      throw new GenesisError(
        TopologyErrorCode.FileTooLarge,
        `${path}: ${size} bytes exceeds ${TOPOLOGY_FILE_BYTES_MAX}`,
      );
    }
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof GenesisError) throw e;
    throw new GenesisError(
      TopologyErrorCode.FileUnreadable,
      `cannot read topology file ${path}: ${(e as Error).message}`,
      {
        cause: e,
        details: { path },
      },
    );
  }
  return parseTopology(text, path);
}

/** Parses and validates topology text. `source` names it in errors. */
export function parseTopology(text: string, source = '<topology>'): Topology {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first !== undefined) {
    const pos = first.linePos?.[0];
    throw new GenesisError(
      TopologyErrorCode.Syntax,
      `${source}:${pos?.line ?? '?'}: ${first.message.split('\n')[0]}`,
      {
        details: { source, line: pos?.line },
      },
    );
  }
  const parsed = topologyFileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path ?? [];
    const line = lineOf(doc.contents, path, lines);
    const field = path.length === 0 ? '(root)' : path.join('.');
    throw new GenesisError(
      TopologyErrorCode.Invalid,
      `${source}:${line ?? '?'}: field "${field}": ${issue?.message ?? 'invalid'}`,
      {
        details: { source, field, line },
      },
    );
  }
  return buildTopology(parsed.data);
}

function lineOf(
  node: unknown,
  path: readonly PropertyKey[],
  lines: LineCounter,
): number | undefined {
  let current: unknown = node;
  let lastRange: [number, number, number] | undefined;
  for (const key of path) {
    const range = (current as { range?: [number, number, number] } | null)?.range;
    if (range) lastRange = range;
    if (isMap(current)) {
      const pair = current.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (pair === undefined) break;
      const keyRange = (pair.key as { range?: [number, number, number] } | null)?.range;
      if (keyRange) lastRange = keyRange;
      current = pair.value;
    } else if (isSeq(current) && typeof key === 'number') {
      current = current.items[key];
    } else break;
  }
  const range = (current as { range?: [number, number, number] } | null)?.range ?? lastRange;
  return range ? lines.linePos(range[0]).line : undefined;
}

/** Indexes a validated topology file, assigning names and checking uniqueness. */
export function buildTopology(file: TopologyFile): Topology {
  const nodes = new Map<string, TopologyNode>();
  const add = (node: TopologyNode): void => {
    if (nodes.has(node.name)) {
      throw new GenesisError(TopologyErrorCode.Invalid, `duplicate node name "${node.name}"`, {
        details: { field: node.name },
      });
    }
    if (nodes.size >= TOPOLOGY_NODES_MAX) {
      throw new GenesisError(
        TopologyErrorCode.TooLarge,
        `topology exceeds TOPOLOGY_NODES_MAX (${TOPOLOGY_NODES_MAX}) nodes`,
      );
    }
    nodes.set(node.name, node);
  };
  const regionNames: string[] = [];
  const dtnRegions: string[] = [];
  for (const r of file.regions) {
    const hubNames: string[] = [];
    r.hubs.forEach((h, hi) => {
      const hub = `${r.name}.${h.name ?? `h${hi + 1}`}`;
      const podNames: string[] = [];
      h.pods.forEach((p, pi) => {
        const pod = `${hub}.${p.name ?? `p${pi + 1}`}`;
        const tiles =
          typeof p.tiles === 'number'
            ? Array.from({ length: p.tiles }, (_, ti) => ({
                name: `t${String(ti + 1).padStart(2, '0')}`,
                labels: {},
              }))
            : p.tiles;
        const tileNames = tiles.map((t) => `${pod}.${t.name}`);
        tiles.forEach((t, ti) => {
          add({
            name: tileNames[ti] as string,
            level: 'tile',
            parent: pod,
            children: [],
            region: r.name,
            labels: t.labels,
          });
        });
        add({
          name: pod,
          level: 'pod',
          parent: hub,
          children: tileNames,
          region: r.name,
          labels: p.labels,
        });
        podNames.push(pod);
      });
      add({
        name: hub,
        level: 'hub',
        parent: r.name,
        children: podNames,
        region: r.name,
        labels: h.labels,
      });
      hubNames.push(hub);
    });
    // A DTN region has no NATS path to the global tier: its root stands alone.
    add({
      name: r.name,
      level: 'region',
      parent: r.dtn ? undefined : 'global',
      children: hubNames,
      region: r.name,
      labels: r.labels,
    });
    if (r.dtn) dtnRegions.push(r.name);
    else regionNames.push(r.name);
  }
  add({
    name: 'global',
    level: 'global',
    parent: undefined,
    children: regionNames,
    region: undefined,
    labels: {},
  });
  for (const link of file.dtnLinks) {
    for (const end of [link.from, link.to]) {
      if (nodes.get(end)?.level !== 'region') {
        throw new GenesisError(TopologyErrorCode.Invalid, `dtnLinks: "${end}" is not a region`, {
          details: { field: 'dtnLinks' },
        });
      }
    }
  }
  return { name: file.name, nodes, dtnRegions, dtnLinks: file.dtnLinks };
}

/** Counts nodes per level. */
export function countByLevel(topology: Topology): Record<Level, number> {
  const out: Record<Level, number> = { global: 0, region: 0, hub: 0, pod: 0, tile: 0 };
  for (const n of topology.nodes.values()) out[n.level]++;
  return out;
}
