/**
 * TUF metadata (The Update Framework specification v1.0.x §4) with composite ML-DSA-65 +
 * Ed25519 keys, and the repository side that publishes it.
 *
 * Every metadata file is `{"signed": {...}, "signatures": [{"keyid", "sig"}]}` in canonical
 * JSON (see canonical-json.ts); a signature is Composite-ML-DSA over the canonical bytes of
 * `signed` with ctx "genesis/tuf". Key IDs are the hex SHA-256 of the canonical key object.
 * Unknown fields anywhere in signed metadata are rejected: the client would otherwise accept
 * data nobody reviewed (and canonical-form checks would not cover it).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Clock } from '../core/index.ts';
import { fromBase64Strict, toBase64, toHex, utf8 } from './bytes.ts';
import { canonicalBytes, canonicalize, parseCanonical } from './canonical-json.ts';
import {
  type CompositeAlgorithm,
  type CompositeSigner,
  CompositeVerifier,
  DEFAULT_COMPOSITE_ALG,
} from './composite.ts';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';

/** TUF specification version written into metadata. */
export const TUF_SPEC_VERSION = '1.0.31';
/** Composite signature context of TUF metadata. */
export const TUF_SIGNATURE_CONTEXT: Uint8Array = utf8('genesis/tuf');
/** Key type name of composite keys in TUF metadata. */
export const TUF_KEY_TYPE = 'mldsa65-ed25519-composite';
/** Largest root.json a client downloads. */
export const TUF_ROOT_BYTES_MAX = 512 * 1024;
/** Largest timestamp.json a client downloads (TUF §5.4: an implementation-chosen bound). */
export const TUF_TIMESTAMP_BYTES_MAX = 64 * 1024;
/** Largest snapshot.json when timestamp does not state its length. */
export const TUF_SNAPSHOT_BYTES_MAX = 1024 * 1024;
/** Largest targets.json when snapshot does not state its length. */
export const TUF_TARGETS_BYTES_MAX = 4 * 1024 * 1024;
/** Most root versions a client walks through in one update (TUF §5.3.3 bound). */
export const TUF_ROOT_ROTATIONS_MAX = 32;
/** Most targets in one targets.json. */
export const TUF_TARGETS_COUNT_MAX = 10_000;
/** Most keys or signatures per role. */
export const TUF_KEYS_PER_ROLE_MAX = 16;

/** Delegated roles one targets role may name (TUF §2.1.2 delegations). */
export const TUF_DELEGATED_ROLES_MAX = 64;
/** Path patterns per delegated role. */
export const TUF_DELEGATION_PATHS_MAX = 64;
/** Delegated roles a client visits looking for one target (python-tuf's max_delegations). */
export const TUF_DELEGATIONS_VISITED_MAX = 32;

/** The four top-level roles. */
export type RoleName = 'root' | 'targets' | 'snapshot' | 'timestamp';
/** All top-level roles. */
export const ROLE_NAMES: readonly RoleName[] = ['root', 'targets', 'snapshot', 'timestamp'];

/** A key in TUF metadata. */
export interface TufKey {
  readonly keytype: typeof TUF_KEY_TYPE;
  readonly scheme: CompositeAlgorithm;
  readonly keyval: { readonly public: string };
}

/** A role's keys and threshold. */
export interface RoleKeys {
  readonly keyids: readonly string[];
  readonly threshold: number;
}

/** Fields every role carries. */
interface Common {
  readonly spec_version: string;
  readonly version: number;
  readonly expires: string;
}

/** root.json `signed`. */
export interface RootSigned extends Common {
  readonly _type: 'root';
  readonly consistent_snapshot: boolean;
  readonly keys: Readonly<Record<string, TufKey>>;
  readonly roles: Readonly<Record<RoleName, RoleKeys>>;
}

/** File info with length and hashes (snapshot/timestamp `meta`, targets). */
export interface MetaFile {
  readonly version: number;
  readonly length?: number;
  readonly hashes?: { readonly sha256: string };
}

/** Custom fields of a Genesis target: its log entry, and Uptane hardware identifiers. */
export interface TargetCustom {
  readonly log: { readonly origin: string; readonly index: number };
  readonly hardwareIds: readonly string[];
  readonly version: number;
}

/** One target. */
export interface TargetFile {
  readonly length: number;
  readonly hashes: { readonly sha256: string };
  readonly custom: TargetCustom;
}

/**
 * A delegation (TUF §4.5 "delegations"): the role `name` may sign targets whose names match one
 * of `paths` (shell-style: `*` and `?` do not match `/`), with `threshold` of `keyids` taken
 * from the delegating role's `keys`. A `terminating` role ends the search for a matching target
 * even when it does not list it (TUF §5.6.7.2.3).
 */
export interface DelegatedRole {
  readonly name: string;
  readonly keyids: readonly string[];
  readonly threshold: number;
  readonly terminating: boolean;
  readonly paths: readonly string[];
}

/** The `delegations` object of a targets role. */
export interface Delegations {
  readonly keys: Readonly<Record<string, TufKey>>;
  readonly roles: readonly DelegatedRole[];
}

/** targets.json `signed` (also the `signed` of every delegated targets role). */
export interface TargetsSigned extends Common {
  readonly _type: 'targets';
  readonly targets: Readonly<Record<string, TargetFile>>;
  readonly delegations?: Delegations;
}

/** snapshot.json `signed`. */
export interface SnapshotSigned extends Common {
  readonly _type: 'snapshot';
  readonly meta: Readonly<Record<string, MetaFile>>;
}

/** timestamp.json `signed`. */
export interface TimestampSigned extends Common {
  readonly _type: 'timestamp';
  readonly meta: Readonly<Record<string, MetaFile>>;
}

/** Signed metadata of any role. */
export type AnySigned = RootSigned | TargetsSigned | SnapshotSigned | TimestampSigned;

/** A signed envelope. */
export interface Envelope<T extends AnySigned> {
  readonly signed: T;
  readonly signatures: readonly { readonly keyid: string; readonly sig: string }[];
}

function meta(message: string, attack?: string, details: Record<string, unknown> = {}): TrustError {
  return new TrustError(TRUST_ERROR_CODES.metadata, message, {
    details: { ...details, ...(attack === undefined ? {} : { attack }) },
  });
}

/** The TUF key object of a composite public key. */
export function tufKey(
  publicKey: Uint8Array,
  alg: CompositeAlgorithm = DEFAULT_COMPOSITE_ALG,
): TufKey {
  return { keytype: TUF_KEY_TYPE, scheme: alg, keyval: { public: toBase64(publicKey) } };
}

/** Key ID: hex SHA-256 of the canonical key object (TUF §4.2). */
export function tufKeyId(key: TufKey): string {
  return createHash('sha256').update(canonicalBytes(key)).digest('hex');
}

/** Hex SHA-256. */
export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Signs `signed` with each signer and returns the canonical envelope bytes. */
export function signMetadata<T extends AnySigned>(
  signed: T,
  signers: readonly CompositeSigner[],
): Uint8Array {
  const bytes = canonicalBytes(signed);
  const signatures = signers
    .map((s) => ({
      keyid: tufKeyId(tufKey(s.publicKey, s.alg)),
      sig: toBase64(s.sign(bytes, TUF_SIGNATURE_CONTEXT)),
    }))
    .sort((a, b) => (a.keyid < b.keyid ? -1 : 1));
  return canonicalBytes({ signed, signatures });
}

// --- strict shape checks --------------------------------------------------------------------

type Obj = Record<string, unknown>;

function obj(
  v: unknown,
  what: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw meta(`${what} must be an object`);
  const o = v as Obj;
  for (const k of required) if (!(k in o)) throw meta(`${what} lacks field ${k}`);
  const unknown = Object.keys(o).filter((k) => !required.includes(k) && !optional.includes(k));
  if (unknown.length > 0)
    throw new TrustError(
      TRUST_ERROR_CODES.metadata,
      `${what} has unknown field(s) ${unknown.join(', ')}`,
      { details: { unknown } },
    );
  return o;
}

function int(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
    throw meta(`${what} must be an integer ≥ ${min}`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw meta(`${what} must be a string`);
  return v;
}

const EXPIRES_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

function common(o: Obj, type: string, what: string): void {
  if (o._type !== type) throw meta(`${what} has _type ${String(o._type)}, expected ${type}`);
  const sv = str(o.spec_version, `${what}.spec_version`);
  if (!/^1\.\d+(\.\d+)?$/.test(sv)) throw meta(`${what}.spec_version ${sv} is not 1.x`);
  int(o.version, `${what}.version`, 1);
  const exp = str(o.expires, `${what}.expires`);
  if (!EXPIRES_RE.test(exp) || Number.isNaN(Date.parse(exp)))
    throw meta(`${what}.expires "${exp}" is not YYYY-MM-DDTHH:MM:SSZ`);
}

function hashes(v: unknown, what: string): { sha256: string } {
  const h = obj(v, what, ['sha256']);
  const s = str(h.sha256, `${what}.sha256`);
  if (!/^[0-9a-f]{64}$/.test(s)) throw meta(`${what}.sha256 is not 64 lower-case hex digits`);
  return { sha256: s };
}

function metaFiles(v: unknown, what: string): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw meta(`${what} must be an object`);
  for (const [name, f] of Object.entries(v as Obj)) {
    const o = obj(f, `${what}.${name}`, ['version'], ['length', 'hashes']);
    int(o.version, `${what}.${name}.version`, 1);
    if (o.length !== undefined) int(o.length, `${what}.${name}.length`);
    if (o.hashes !== undefined) hashes(o.hashes, `${what}.${name}.hashes`);
  }
}

/** Checks a `keys` object: supported composite keys, each under the hash of itself. */
function keyTable(v: unknown, what: string): Obj {
  const keys = obj(v, what, [], typeof v === 'object' && v !== null ? Object.keys(v) : []);
  for (const [id, k] of Object.entries(keys)) {
    const ko = obj(k, `${what}.${id}`, ['keytype', 'scheme', 'keyval']);
    if (ko.keytype !== TUF_KEY_TYPE)
      throw meta(`key ${id} has unsupported keytype ${String(ko.keytype)}`);
    if (ko.scheme !== 'MLDSA65-Ed25519-SHA512' && ko.scheme !== 'MLDSA44-Ed25519-SHA512')
      throw meta(`key ${id} has unsupported scheme`);
    str(obj(ko.keyval, `${what}.${id}.keyval`, ['public']).public, 'keyval.public');
    if (tufKeyId(ko as unknown as TufKey) !== id)
      throw meta(`key ID ${id} is not the hash of its key`);
  }
  return keys;
}

/** Checks `keyids` (distinct, known, bounded) and `threshold` (1..count) of a role. */
function roleKeys(ro: Obj, keys: Obj, what: string): void {
  int(ro.threshold, `${what}.threshold`, 1);
  if (
    !Array.isArray(ro.keyids) ||
    ro.keyids.length > TUF_KEYS_PER_ROLE_MAX ||
    ro.keyids.some((k) => typeof k !== 'string' || !(k in keys))
  ) {
    throw meta(`${what}.keyids must list ≤ ${TUF_KEYS_PER_ROLE_MAX} keys present in keys`);
  }
  if (new Set(ro.keyids).size !== ro.keyids.length) throw meta(`${what}.keyids has duplicates`);
  if ((ro.threshold as number) > ro.keyids.length)
    throw meta(`${what}.threshold exceeds its key count`);
}

/** Names a delegated role may take: a file name that is not a top-level role. */
const DELEGATED_ROLE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** True when `name` may name a delegated role (and its `metadata/<name>.json`). */
export function isDelegatedRoleName(name: string): boolean {
  return (
    DELEGATED_ROLE_NAME_RE.test(name) &&
    !(ROLE_NAMES as readonly string[]).includes(name) &&
    !/^\d+\.root$/.test(name)
  );
}

function delegations(v: unknown, what: string): void {
  const d = obj(v, what, ['keys', 'roles']);
  const keys = keyTable(d.keys, `${what}.keys`);
  if (!Array.isArray(d.roles) || d.roles.length > TUF_DELEGATED_ROLES_MAX)
    throw meta(`${what}.roles must be an array of ≤ ${TUF_DELEGATED_ROLES_MAX} roles`);
  const names = new Set<string>();
  for (const [i, r] of d.roles.entries()) {
    const rw = `${what}.roles[${i}]`;
    const ro = obj(r, rw, ['name', 'keyids', 'threshold', 'terminating', 'paths']);
    const name = str(ro.name, `${rw}.name`);
    if (!isDelegatedRoleName(name)) throw meta(`${rw}.name "${name}" is not a delegated role name`);
    if (names.has(name)) throw meta(`${what} names role ${name} twice`);
    names.add(name);
    roleKeys(ro, keys, rw);
    if (typeof ro.terminating !== 'boolean') throw meta(`${rw}.terminating must be a boolean`);
    if (
      !Array.isArray(ro.paths) ||
      ro.paths.length === 0 ||
      ro.paths.length > TUF_DELEGATION_PATHS_MAX ||
      ro.paths.some((p) => typeof p !== 'string' || p.length === 0 || p.length > 255)
    )
      throw meta(`${rw}.paths must list 1..${TUF_DELEGATION_PATHS_MAX} non-empty patterns`);
  }
}

/**
 * TUF §4.5 `paths`: shell-style patterns where `*` matches any run of characters except `/` and
 * `?` one character except `/` (python-tuf's fnmatch applied per path segment).
 */
export function delegationPathMatches(pattern: string, target: string): boolean {
  let re = '^';
  for (const c of pattern) {
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(target);
}

/** Validates the shape of `signed` for `role`. @throws {TrustError} TRUST_METADATA. */
export function checkSigned(role: RoleName, v: unknown): AnySigned {
  const what = `${role}.json`;
  if (role === 'root') {
    const o = obj(v, what, [
      '_type',
      'spec_version',
      'version',
      'expires',
      'consistent_snapshot',
      'keys',
      'roles',
    ]);
    common(o, 'root', what);
    const keys = keyTable(o.keys, `${what}.keys`);
    const roles = obj(o.roles, `${what}.roles`, ROLE_NAMES);
    for (const r of ROLE_NAMES) {
      roleKeys(
        obj(roles[r], `${what}.roles.${r}`, ['keyids', 'threshold']),
        keys,
        `${what}.roles.${r}`,
      );
    }
    return o as unknown as RootSigned;
  }
  if (role === 'targets') {
    const o = obj(
      v,
      what,
      ['_type', 'spec_version', 'version', 'expires', 'targets'],
      ['delegations'],
    );
    common(o, 'targets', what);
    if (o.delegations !== undefined) delegations(o.delegations, `${what}.delegations`);
    const t = o.targets;
    if (typeof t !== 'object' || t === null || Array.isArray(t))
      throw meta(`${what}.targets must be an object`);
    const entries = Object.entries(t as Obj);
    if (entries.length > TUF_TARGETS_COUNT_MAX)
      throw meta(`${what} lists more than ${TUF_TARGETS_COUNT_MAX} targets`);
    for (const [name, f] of entries) {
      const fo = obj(f, `target ${name}`, ['length', 'hashes', 'custom']);
      int(fo.length, `target ${name}.length`);
      hashes(fo.hashes, `target ${name}.hashes`);
      const c = obj(fo.custom, `target ${name}.custom`, ['log', 'hardwareIds', 'version']);
      const l = obj(c.log, `target ${name}.custom.log`, ['origin', 'index']);
      str(l.origin, 'custom.log.origin');
      int(l.index, 'custom.log.index');
      int(c.version, 'custom.version', 1);
      if (!Array.isArray(c.hardwareIds) || c.hardwareIds.some((h) => typeof h !== 'string'))
        throw meta(`target ${name}.custom.hardwareIds must be strings`);
    }
    return o as unknown as TargetsSigned;
  }
  const o = obj(v, what, ['_type', 'spec_version', 'version', 'expires', 'meta']);
  common(o, role, what);
  metaFiles(o.meta, `${what}.meta`);
  return o as unknown as AnySigned;
}

/**
 * Parses an envelope and checks that at least `threshold` distinct keys of `roleKeys` signed it
 * (TUF §5.3.x / §5.4.2). Signatures by other keys are ignored; duplicates count once.
 * @throws {TrustError} TRUST_NON_CANONICAL, TRUST_METADATA, TRUST_BAD_SIGNATURE.
 */
export function verifyEnvelope<T extends AnySigned>(
  bytes: Uint8Array,
  role: RoleName,
  root: RootSigned,
  roleKeysOverride?: RoleKeys,
): Envelope<T> {
  return verifyWithKeys<T>(bytes, role, role, root.keys, roleKeysOverride ?? root.roles[role]);
}

/**
 * Verifies a delegated targets role's metadata against the delegation that names it: the keys
 * come from the delegating role's `delegations.keys`, not from root (TUF §5.6.7.2.1).
 * @throws {TrustError} TRUST_NON_CANONICAL, TRUST_METADATA, TRUST_BAD_SIGNATURE.
 */
export function verifyDelegatedEnvelope(
  bytes: Uint8Array,
  delegation: DelegatedRole,
  keys: Readonly<Record<string, TufKey>>,
): Envelope<TargetsSigned> {
  return verifyWithKeys<TargetsSigned>(bytes, 'targets', delegation.name, keys, delegation);
}

function verifyWithKeys<T extends AnySigned>(
  bytes: Uint8Array,
  type: RoleName,
  role: string,
  keys: Readonly<Record<string, TufKey>>,
  rk: RoleKeys,
): Envelope<T> {
  const env = obj(parseCanonical(bytes, `${role}.json`), `${role}.json`, ['signed', 'signatures']);
  const signed = checkSigned(type, env.signed) as T;
  if (!Array.isArray(env.signatures) || env.signatures.length > TUF_KEYS_PER_ROLE_MAX * 2)
    throw meta(`${role}.json signatures must be a short array`);
  const message = canonicalBytes(signed);
  const good = new Set<string>();
  for (const s of env.signatures) {
    const so = obj(s, `${role}.json signature`, ['keyid', 'sig']);
    const keyid = str(so.keyid, 'keyid');
    if (!rk.keyids.includes(keyid) || good.has(keyid)) continue;
    const key = keys[keyid];
    const sig = fromBase64Strict(str(so.sig, 'sig'));
    if (key === undefined || sig === undefined) continue;
    const pk = fromBase64Strict(key.keyval.public);
    const v = pk === undefined ? undefined : CompositeVerifier.tryCreate(key.scheme, pk);
    if (v?.verify(message, sig, TUF_SIGNATURE_CONTEXT)) good.add(keyid);
  }
  if (good.size < rk.threshold) {
    throw new TrustError(
      TRUST_ERROR_CODES.badSignature,
      `${role}.json has ${good.size} valid signatures, threshold ${rk.threshold}`,
      {
        details: {
          role,
          valid: good.size,
          threshold: rk.threshold,
          attack: 'key compromise below threshold / arbitrary installation',
        },
      },
    );
  }
  return { signed, signatures: env.signatures as Envelope<T>['signatures'] };
}

/** True when `expires` is at or before `nowMs` (TUF §5.3.10 and friends). */
export function isExpired(expires: string, nowMs: number): boolean {
  return Date.parse(expires) <= nowMs;
}

/** ISO expiry `ms` milliseconds after `nowMs`, at whole seconds. */
export function expiresIn(nowMs: number, ms: number): string {
  return `${new Date(Math.floor((nowMs + ms) / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

/** The log entry of a released target: the exact bytes the client recomputes and looks up. */
export function releaseLogEntry(
  name: string,
  target: { length: number; sha256: string; version: number; hardwareIds: readonly string[] },
): Uint8Array {
  return canonicalBytes({
    type: 'genesis.release/v1',
    target: name,
    length: target.length,
    sha256: target.sha256,
    version: target.version,
    hardwareIds: [...target.hardwareIds],
  });
}

// --- storage --------------------------------------------------------------------------------

/** Where a repository keeps metadata and target files (paths like `metadata/root.json`). */
export interface RepoStore {
  read(path: string): Uint8Array | undefined;
  write(path: string, bytes: Uint8Array): void;
}

/** A repository kept in memory (tests; also a mirror whose files tests can tamper with). */
export class MemoryRepoStore implements RepoStore {
  readonly files = new Map<string, Uint8Array>();
  read(path: string): Uint8Array | undefined {
    return this.files.get(path);
  }
  write(path: string, bytes: Uint8Array): void {
    this.files.set(path, Uint8Array.from(bytes));
  }
}

/** A repository in a directory; writes are atomic (temp file + rename). */
export class DirectoryRepoStore implements RepoStore {
  constructor(readonly dir: string) {}
  read(path: string): Uint8Array | undefined {
    const p = this.resolve(path);
    return existsSync(p) ? new Uint8Array(readFileSync(p)) : undefined;
  }
  write(path: string, bytes: Uint8Array): void {
    const p = this.resolve(path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(`${p}.tmp`, bytes);
    renameSync(`${p}.tmp`, p);
  }
  private resolve(path: string): string {
    if (path.split('/').some((s) => s === '..' || s === '') || path.startsWith('/'))
      throw meta(`bad repository path ${path}`);
    return join(this.dir, path);
  }
}

/** Reads a targets role's metadata (top-level or delegated) from a repository, unverified. */
export function readTargetsRole(store: RepoStore, role: string): TargetsSigned {
  const b = store.read(`metadata/${role}.json`);
  if (b === undefined)
    throw new TrustError(TRUST_ERROR_CODES.notFound, `repository has no role ${role}`);
  return (JSON.parse(new TextDecoder().decode(b)) as Envelope<TargetsSigned>).signed;
}

/** A delegation and the role that made it. */
export interface DelegationEntry {
  readonly delegation: DelegatedRole;
  readonly parent: string;
  /** The delegated role's current metadata. */
  readonly signed: TargetsSigned;
}

/**
 * The delegations of a repository, breadth first from top-level targets (each role once,
 * at most {@link TUF_DELEGATED_ROLES_MAX}); for the publisher and `genesis update status`.
 */
export function delegationTree(store: RepoStore): DelegationEntry[] {
  const out: DelegationEntry[] = [];
  const queue: [string, TargetsSigned][] = [['targets', readTargetsRole(store, 'targets')]];
  const seen = new Set(['targets']);
  while (queue.length > 0 && out.length < TUF_DELEGATED_ROLES_MAX) {
    const [parent, t] = queue.shift() as [string, TargetsSigned];
    for (const d of t.delegations?.roles ?? []) {
      if (seen.has(d.name)) continue;
      seen.add(d.name);
      const signed = readTargetsRole(store, d.name);
      out.push({ delegation: d, parent, signed });
      queue.push([d.name, signed]);
    }
  }
  return out;
}

/** Keys a repository signs with, per role. */
export type RoleSigners = Readonly<Record<RoleName, readonly CompositeSigner[]>>;

/** Expiry periods per role. */
export const TUF_EXPIRY_MS_DEFAULT: Readonly<Record<RoleName, number>> = {
  root: 365 * 86_400_000,
  targets: 90 * 86_400_000,
  snapshot: 7 * 86_400_000,
  timestamp: 86_400_000,
};

/** Appends a release entry to the transparency log; returns its index. */
export type ReleaseLogger = (entry: Uint8Array) => { origin: string; index: number };

/**
 * The repository (publisher) side: writes `metadata/<n>.root.json`, `metadata/root.json`,
 * `metadata/targets.json`, `metadata/snapshot.json`, `metadata/timestamp.json` and
 * `targets/<name>`. Each publish logs the release, then bumps targets, snapshot and timestamp.
 */
export class TufRepository {
  constructor(
    private readonly store: RepoStore,
    private signers: RoleSigners,
    private readonly clock: Clock,
    private readonly logRelease: ReleaseLogger,
    private readonly thresholds: Readonly<Record<RoleName, number>> = {
      root: 1,
      targets: 1,
      snapshot: 1,
      timestamp: 1,
    },
  ) {}

  private rootSigned(version: number, signers: RoleSigners): RootSigned {
    const keys: Record<string, TufKey> = {};
    const roles = {} as Record<RoleName, RoleKeys>;
    for (const r of ROLE_NAMES) {
      const ids = signers[r].map((s) => {
        const k = tufKey(s.publicKey, s.alg);
        const id = tufKeyId(k);
        keys[id] = k;
        return id;
      });
      roles[r] = { keyids: [...new Set(ids)].sort(), threshold: this.thresholds[r] };
    }
    return {
      _type: 'root',
      spec_version: TUF_SPEC_VERSION,
      version,
      expires: expiresIn(this.clock.now(), TUF_EXPIRY_MS_DEFAULT.root),
      consistent_snapshot: false,
      keys,
      roles,
    };
  }

  /** Writes root v1 and empty targets, snapshot and timestamp. */
  init(): void {
    if (this.store.read('metadata/root.json') !== undefined)
      throw new TrustError(TRUST_ERROR_CODES.exists, 'repository already initialised');
    const root = signMetadata(this.rootSigned(1, this.signers), this.signers.root);
    this.store.write('metadata/1.root.json', root);
    this.store.write('metadata/root.json', root);
    this.writeTargets({
      _type: 'targets',
      spec_version: TUF_SPEC_VERSION,
      version: 1,
      expires: this.exp('targets'),
      targets: {},
    });
  }

  private exp(role: RoleName): string {
    return expiresIn(this.clock.now(), TUF_EXPIRY_MS_DEFAULT[role]);
  }

  private current<T extends AnySigned>(role: RoleName): T {
    const b = this.store.read(`metadata/${role}.json`);
    if (b === undefined)
      throw new TrustError(
        TRUST_ERROR_CODES.notFound,
        `repository has no ${role}.json; run genesis update init`,
      );
    return (JSON.parse(new TextDecoder().decode(b)) as Envelope<T>).signed;
  }

  /** Current root version. */
  get rootVersion(): number {
    return this.current<RootSigned>('root').version;
  }

  /** The current targets. */
  targets(): TargetsSigned {
    return this.current<TargetsSigned>('targets');
  }

  private writeTargets(t: TargetsSigned): void {
    this.writeTargetsRole('targets', t, this.signers.targets);
  }

  /** Writes a targets role (top-level or delegated) and re-signs snapshot and timestamp. */
  private writeTargetsRole(
    role: string,
    t: TargetsSigned,
    signers: readonly CompositeSigner[],
  ): void {
    this.store.write(`metadata/${role}.json`, signMetadata(t, signers));
    this.refreshSnapshot();
  }

  /** Reads a targets role's current metadata (top-level or delegated). */
  private targetsRole(role: string): TargetsSigned {
    return readTargetsRole(this.store, role);
  }

  /** Every delegation in the tree under top-level targets, with the role that made it. */
  delegatedRoles(): DelegationEntry[] {
    return delegationTree(this.store);
  }

  /** Snapshot lists every targets metadata file, top-level and delegated (TUF §4.4). */
  private refreshSnapshot(): void {
    const prev =
      this.store.read('metadata/snapshot.json') === undefined
        ? 0
        : this.current<SnapshotSigned>('snapshot').version;
    const files: Record<string, MetaFile> = {};
    for (const role of ['targets', ...this.delegatedRoles().map((r) => r.delegation.name)]) {
      const b = this.store.read(`metadata/${role}.json`) as Uint8Array;
      files[`${role}.json`] = {
        version: this.targetsRole(role).version,
        length: b.length,
        hashes: { sha256: sha256Hex(b) },
      };
    }
    const snap: SnapshotSigned = {
      _type: 'snapshot',
      spec_version: TUF_SPEC_VERSION,
      version: prev + 1,
      expires: this.exp('snapshot'),
      meta: files,
    };
    const sb = signMetadata(snap, this.signers.snapshot);
    this.store.write('metadata/snapshot.json', sb);
    this.refreshTimestamp(snap.version, sb);
  }

  /**
   * Delegates target names matching `paths` to a new role signed by `signers` (TUF §4.5).
   * The delegating role is top-level targets unless `parent` names a delegated role (then its
   * own signers must be given: only a role's keys may change what it delegates).
   */
  delegate(
    role: string,
    signers: readonly CompositeSigner[],
    paths: readonly string[],
    options: {
      readonly terminating?: boolean;
      readonly threshold?: number;
      readonly parent?: { readonly role: string; readonly signers: readonly CompositeSigner[] };
    } = {},
  ): DelegatedRole {
    if (!isDelegatedRoleName(role)) throw meta(`bad delegated role name "${role}"`);
    if (this.delegatedRoles().some((r) => r.delegation.name === role))
      throw new TrustError(TRUST_ERROR_CODES.exists, `role ${role} is already delegated`);
    const parentRole = options.parent?.role ?? 'targets';
    const parentSigners = options.parent?.signers ?? this.signers.targets;
    const parent = this.targetsRole(parentRole);
    const keys: Record<string, TufKey> = { ...(parent.delegations?.keys ?? {}) };
    const keyids = signers.map((sg) => {
      const k = tufKey(sg.publicKey, sg.alg);
      const id = tufKeyId(k);
      keys[id] = k;
      return id;
    });
    const delegation: DelegatedRole = {
      name: role,
      keyids: [...new Set(keyids)].sort(),
      threshold: options.threshold ?? 1,
      terminating: options.terminating ?? false,
      paths: [...paths],
    };
    const roles = [...(parent.delegations?.roles ?? []), delegation];
    // Validate before anything is written: a bad pattern or threshold must not leave a half-made
    // delegation behind.
    checkSigned('targets', { ...parent, delegations: { keys, roles } });
    this.store.write(
      `metadata/${role}.json`,
      signMetadata(
        {
          _type: 'targets',
          spec_version: TUF_SPEC_VERSION,
          version: 1,
          expires: this.exp('targets'),
          targets: {},
        } satisfies TargetsSigned,
        signers,
      ),
    );
    this.writeTargetsRole(
      parentRole,
      {
        ...parent,
        version: parent.version + 1,
        expires: this.exp('targets'),
        delegations: { keys, roles },
      },
      parentSigners,
    );
    return delegation;
  }

  private refreshTimestamp(snapshotVersion: number, snapshotBytes: Uint8Array): void {
    const prev =
      this.store.read('metadata/timestamp.json') === undefined
        ? 0
        : this.current<TimestampSigned>('timestamp').version;
    const ts: TimestampSigned = {
      _type: 'timestamp',
      spec_version: TUF_SPEC_VERSION,
      version: prev + 1,
      expires: this.exp('timestamp'),
      meta: {
        'snapshot.json': {
          version: snapshotVersion,
          length: snapshotBytes.length,
          hashes: { sha256: sha256Hex(snapshotBytes) },
        },
      },
    };
    this.store.write('metadata/timestamp.json', signMetadata(ts, this.signers.timestamp));
  }

  /** Re-signs the timestamp with a fresh expiry (what a timestamp service does periodically). */
  renewTimestamp(): void {
    const snap = this.store.read('metadata/snapshot.json');
    if (snap === undefined) throw new TrustError(TRUST_ERROR_CODES.notFound, 'no snapshot.json');
    this.refreshTimestamp(this.current<SnapshotSigned>('snapshot').version, snap);
  }

  /**
   * Publishes a target: logs the release first (so no signed target exists without a log
   * entry), stores the file, then signs new targets, snapshot and timestamp.
   */
  publish(
    name: string,
    bytes: Uint8Array,
    hardwareIds: readonly string[] = [],
    delegated?: { readonly role: string; readonly signers: readonly CompositeSigner[] },
  ): { version: number; logIndex: number; sha256: string; role: string } {
    if (!/^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,254}$/.test(name) || name.split('/').includes('..'))
      throw meta(`bad target name "${name}"`);
    const role = delegated?.role ?? 'targets';
    if (delegated !== undefined) {
      const d = this.delegatedRoles().find((r) => r.delegation.name === role)?.delegation;
      if (d === undefined)
        throw new TrustError(TRUST_ERROR_CODES.notFound, `repository has no role ${role}`);
      // A client only looks for `name` in roles whose paths match it, so a target outside the
      // role's paths could never be installed: refuse it here rather than publish dead weight.
      if (!d.paths.some((p) => delegationPathMatches(p, name)))
        throw meta(`target ${name} is outside role ${role}'s paths (${d.paths.join(', ')})`);
    }
    const t = this.targetsRole(role);
    const version = (t.targets[name]?.custom.version ?? 0) + 1;
    const sha256 = sha256Hex(bytes);
    const log = this.logRelease(
      releaseLogEntry(name, { length: bytes.length, sha256, version, hardwareIds }),
    );
    this.store.write(`targets/${name}`, bytes);
    const file: TargetFile = {
      length: bytes.length,
      hashes: { sha256 },
      custom: { log, hardwareIds: [...hardwareIds], version },
    };
    this.writeTargetsRole(
      role,
      {
        ...t,
        version: t.version + 1,
        expires: this.exp('targets'),
        targets: { ...t.targets, [name]: file },
      },
      delegated?.signers ?? this.signers.targets,
    );
    return { version, logIndex: log.index, sha256, role };
  }

  /**
   * Root rotation (TUF §5.3): writes root version n+1 signed by the threshold of the old root
   * keys *and* of the new ones, so clients can walk the chain. Rotating the timestamp or
   * snapshot keys also re-signs those roles.
   */
  rotateRoot(next: RoleSigners): number {
    const version = this.rootVersion + 1;
    const signed = this.rootSigned(version, next);
    const signers = [
      ...new Map([...this.signers.root, ...next.root].map((s) => [toHex(s.publicKey), s])).values(),
    ];
    const bytes = signMetadata(signed, signers);
    this.store.write(`metadata/${version}.root.json`, bytes);
    this.store.write('metadata/root.json', bytes);
    this.signers = next;
    const targets = this.targets();
    this.writeTargets({ ...targets, version: targets.version + 1, expires: this.exp('targets') });
    return version;
  }
}

/** Re-exported for the client. */
export { canonicalize };
