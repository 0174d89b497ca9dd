/**
 * Workload specs: declarative YAML or JSON, validated by a zod schema whose errors name the
 * field. A workload is a WebAssembly module (by CID) with the capabilities it needs, a CPU
 * budget and memory, a replica count, constraints (level, labels, subtree), affinity and
 * anti-affinity to other workloads, spread across pods or hubs with target percentages, a
 * scoring strategy and a priority (higher preempts lower).
 */
import { readFileSync, statSync } from 'node:fs';
import { CID } from 'multiformats/cid';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { FabricError, FabricErrorCode } from './errors.ts';
import { WORKLOAD_FILE_BYTES_MAX, WORKLOAD_REPLICAS_MAX } from './limits.ts';

const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;
/** Largest priority. */
export const PRIORITY_MAX = 1_000_000;

const cid = z
  .string()
  .max(128)
  .refine((s) => {
    try {
      CID.parse(s);
      return true;
    } catch {
      return false;
    }
  }, 'not a valid CID');

const scope = z.enum(['tile', 'pod', 'hub']);
const affinityTerm = z.strictObject({
  workload: z.string().regex(NAME_RE),
  scope: scope.default('tile'),
  /** Required terms filter; preferred ones only score. */
  required: z.boolean().default(false),
});

/** The schema of one workload spec. */
export const workloadSpecSchema = z.strictObject({
  name: z.string().regex(NAME_RE),
  module: cid,
  capabilities: z.array(z.string().min(1).max(64)).max(64).default([]),
  cpuMillis: z.number().int().min(1).max(1_000_000),
  memoryMb: z.number().int().min(1).max(16_777_216),
  replicas: z.number().int().min(0).max(WORKLOAD_REPLICAS_MAX).default(1),
  priority: z.number().int().min(0).max(PRIORITY_MAX).default(0),
  constraints: z
    .strictObject({
      /** Placements run on tiles (pods, hubs and regions host servers and agents). */
      level: z.literal('tile').default('tile'),
      labels: z.record(z.string().max(64), z.string().max(128)).default({}),
      /** Only under this node (e.g. `eu1.h1`). */
      under: z.string().max(128).optional(),
    })
    .default({ level: 'tile', labels: {} }),
  affinity: z.array(affinityTerm).max(16).default([]),
  antiAffinity: z.array(affinityTerm).max(16).default([]),
  spread: z
    .strictObject({
      over: z.enum(['pod', 'hub']),
      /** Target share per pod/hub name, in percent; omitted: even. */
      targets: z.record(z.string().max(128), z.number().min(0).max(100)).optional(),
    })
    .refine(
      (s) =>
        s.targets === undefined ||
        Math.abs(Object.values(s.targets).reduce((a, b) => a + b, 0) - 100) < 1e-6,
      'spread targets must sum to 100',
    )
    .optional(),
  strategy: z.enum(['binpack', 'spread']).default('binpack'),
});

/** A validated workload spec. */
export type WorkloadSpec = z.infer<typeof workloadSpecSchema>;
/** A workload spec as written (defaults not yet applied). */
export type WorkloadSpecInput = z.input<typeof workloadSpecSchema>;

/**
 * Validates one spec.
 * @throws {FabricError} FABRIC_SPEC_INVALID naming the field.
 */
export function parseWorkloadSpec(value: unknown, source = '<spec>'): WorkloadSpec {
  const r = workloadSpecSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : '(root)';
    throw new FabricError(
      FabricErrorCode.SpecInvalid,
      `${source}: field "${field}": ${issue?.message ?? 'invalid'}`,
      { details: { source, field } },
    );
  }
  return r.data;
}

/**
 * Reads specs from YAML (several documents allowed) or JSON (an object or an array).
 * @throws {FabricError} FABRIC_SPEC_UNREADABLE or FABRIC_SPEC_INVALID.
 */
export function loadWorkloadFile(path: string): WorkloadSpec[] {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > WORKLOAD_FILE_BYTES_MAX)
      throw new FabricError(
        FabricErrorCode.SpecUnreadable,
        `${path}: ${size} bytes exceeds WORKLOAD_FILE_BYTES_MAX`,
      );
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof FabricError) throw e;
    throw new FabricError(
      FabricErrorCode.SpecUnreadable,
      `cannot read ${path}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return parseWorkloadText(text, path);
}

/** Parses spec text (YAML or JSON). */
export function parseWorkloadText(text: string, source = '<spec>'): WorkloadSpec[] {
  const docs = parseAllDocuments(text);
  const values: unknown[] = [];
  for (const d of Array.isArray(docs) ? docs : [docs]) {
    const e = d.errors[0];
    if (e !== undefined)
      throw new FabricError(FabricErrorCode.SpecInvalid, `${source}: ${e.message.split('\n')[0]}`, {
        details: { source },
      });
    const v: unknown = d.toJS();
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) values.push(...v);
    else values.push(v);
  }
  if (values.length === 0)
    throw new FabricError(FabricErrorCode.SpecInvalid, `${source}: no workload in file`);
  return values.map((v, i) => parseWorkloadSpec(v, values.length > 1 ? `${source}[${i}]` : source));
}

/** Instance id of replica `r` of a workload. */
export function instanceId(workload: string, replica: number): string {
  return `${workload}.r${replica}`;
}
