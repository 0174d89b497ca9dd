/**
 * The TUF client workflow (TUF specification §5.2–§5.7) with Sigstore-style transparency: a
 * target is installed only if its release entry is in the transparency log under a checkpoint
 * that enough witnesses cosigned. Also the Uptane split for fleets: a hub is the primary (full
 * verification, this client) and tiles are secondaries (partial verification of what the hub
 * directs, {@link verifySecondaryImage}).
 *
 * Every error names the TUF attack it defends against in `details.attack`.
 */
import type { Clock } from '../core/index.ts';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';
import { leafHash, verifyInclusion } from './merkle.ts';
import {
  type DelegatedRole,
  delegationPathMatches,
  type Envelope,
  isExpired,
  type MetaFile,
  ROLE_NAMES,
  type RootSigned,
  releaseLogEntry,
  type SnapshotSigned,
  sha256Hex,
  type TargetFile,
  type TargetsSigned,
  type TimestampSigned,
  TUF_DELEGATIONS_VISITED_MAX,
  TUF_ROOT_BYTES_MAX,
  TUF_ROOT_ROTATIONS_MAX,
  TUF_SNAPSHOT_BYTES_MAX,
  TUF_TARGETS_BYTES_MAX,
  TUF_TIMESTAMP_BYTES_MAX,
  type TufKey,
  verifyDelegatedEnvelope,
  verifyEnvelope,
} from './tuf.ts';
import { type CheckpointPolicy, verifyWitnessedCheckpoint } from './witness.ts';

/** Largest target a client downloads. */
export const TUF_TARGET_BYTES_MAX = 1024 * 1024 * 1024;

/**
 * A mirror. `fetch` returns the file or undefined if absent; it must stop reading after
 * `maxBytes + 1` bytes (the client rejects anything longer: TUF "endless data").
 */
export interface Mirror {
  readonly name: string;
  fetch(path: string, maxBytes: number): Promise<Uint8Array | undefined>;
}

/** A mirror over a {@link RepoStore}-like reader. */
export function storeMirror(
  name: string,
  store: { read(path: string): Uint8Array | undefined },
): Mirror {
  return {
    name,
    fetch: async (path, maxBytes) => {
      const b = store.read(path);
      return b === undefined ? undefined : b.subarray(0, maxBytes + 1);
    },
  };
}

/** Where a client gets witnessed checkpoints and inclusion proofs. */
export interface LogProofSource {
  /** The newest witnessed checkpoint note of the log `origin`. */
  checkpoint(origin: string): Promise<string>;
  /** Inclusion proof of `index` in the tree of `size`. */
  inclusionProof(origin: string, index: number, size: number): Promise<Uint8Array[]>;
}

/** Client configuration. */
export interface TufClientInit {
  /** Bytes of a root.json the client trusts out of band (TUF §5.2). */
  readonly trustedRoot: Uint8Array;
  readonly mirrors: readonly Mirror[];
  readonly clock: Clock;
  readonly log: LogProofSource;
  /** Witness policy per log origin. */
  readonly logPolicies: readonly CheckpointPolicy[];
  /** Uptane hardware identifier of this device; targets for other hardware are refused. */
  readonly hardwareId?: string;
}

function fail(
  code: keyof typeof TRUST_ERROR_CODES,
  message: string,
  attack: string,
  details: Record<string, unknown> = {},
): TrustError {
  return new TrustError(TRUST_ERROR_CODES[code], message, { details: { ...details, attack } });
}

/** Checks a downloaded file against length and sha256 from trusted metadata. */
function checkFile(
  bytes: Uint8Array,
  info: { length?: number; hashes?: { sha256: string } },
  what: string,
): void {
  if (info.length !== undefined && bytes.length !== info.length) {
    if (bytes.length > info.length)
      throw fail(
        'endlessData',
        `${what} is longer than its trusted length ${info.length}`,
        'endless data',
      );
    throw fail(
      'targetMismatch',
      `${what} is ${bytes.length} bytes, trusted length ${info.length}`,
      'arbitrary installation',
    );
  }
  if (info.hashes !== undefined && sha256Hex(bytes) !== info.hashes.sha256) {
    throw fail(
      'targetMismatch',
      `${what} does not match its trusted sha256`,
      'arbitrary installation / mix-and-match',
    );
  }
}

/** The client's trusted state after an update. */
export interface TrustedMetadata {
  readonly root: RootSigned;
  readonly timestamp?: TimestampSigned | undefined;
  readonly snapshot?: SnapshotSigned | undefined;
  readonly targets?: TargetsSigned | undefined;
  /** Raw bytes of the trusted targets.json (handed to Uptane secondaries). */
  readonly targetsBytes?: Uint8Array | undefined;
  /** Delegated targets roles loaded so far, by name (kept for rollback checks). */
  readonly delegated?: ReadonlyMap<string, TargetsSigned> | undefined;
}

/** A verified, logged target ready to install. */
export interface VerifiedTarget {
  readonly name: string;
  /** The targets role that signed it: `targets`, or the delegated role found by the search. */
  readonly role: string;
  readonly bytes: Uint8Array;
  readonly info: TargetFile;
  readonly checkpoint: string;
  readonly inclusionProof: readonly Uint8Array[];
  readonly cosigners: readonly string[];
}

/** A TUF client (one per device; keeps its trusted metadata in memory). */
export class TufClient {
  private state: { -readonly [K in keyof TrustedMetadata]: TrustedMetadata[K] };

  constructor(private readonly init: TufClientInit) {
    const env = verifyEnvelope<RootSigned>(
      init.trustedRoot,
      'root',
      parseRootUnsafe(init.trustedRoot),
    );
    this.state = { root: env.signed };
  }

  /** The trusted metadata. */
  get trusted(): TrustedMetadata {
    return this.state;
  }

  /** Tries mirrors in order until one yields a file that passes `accept` (malicious mirrors). */
  private async fromMirrors<T>(
    path: string,
    maxBytes: number,
    accept: (b: Uint8Array) => T,
  ): Promise<T | undefined> {
    let lastError: unknown;
    let found = false;
    for (const m of this.init.mirrors) {
      const b = await m.fetch(path, maxBytes);
      if (b === undefined) continue;
      found = true;
      try {
        if (b.length > maxBytes)
          throw fail(
            'endlessData',
            `${path} from ${m.name} exceeds ${maxBytes} bytes`,
            'endless data',
          );
        return accept(b);
      } catch (e) {
        lastError = e;
      }
    }
    if (found) throw lastError;
    return undefined;
  }

  private checkFresh(role: string, expires: string): void {
    if (isExpired(expires, this.init.clock.now()))
      throw fail('expired', `${role}.json expired at ${expires}`, 'indefinite freeze', {
        role,
        expires,
      });
  }

  /** TUF §5.3: walk root versions n+1, n+2, … each signed by the old and the new root. */
  private async updateRoot(): Promise<void> {
    const start = this.state.root;
    for (let i = 0; i < TUF_ROOT_ROTATIONS_MAX; i++) {
      const want = this.state.root.version + 1;
      const next = await this.fromMirrors(`metadata/${want}.root.json`, TUF_ROOT_BYTES_MAX, (b) => {
        verifyEnvelope<RootSigned>(b, 'root', this.state.root);
        const env = verifyEnvelope<RootSigned>(b, 'root', parseRootUnsafe(b));
        if (env.signed.version !== want)
          throw fail('rollback', `root ${want} claims version ${env.signed.version}`, 'rollback');
        return env.signed;
      });
      if (next === undefined) break;
      this.state.root = next;
    }
    this.checkFresh('root', this.state.root.expires);
    // §5.3.11: after a rotation of the timestamp or snapshot keys, forget the trusted timestamp
    // and snapshot, so a fast-forwarded version signed by a compromised key cannot block updates.
    for (const role of ['timestamp', 'snapshot'] as const) {
      if (
        start !== this.state.root &&
        !sameKeys(start.roles[role].keyids, this.state.root.roles[role].keyids)
      ) {
        this.state.timestamp = undefined;
        this.state.snapshot = undefined;
      }
    }
  }

  /** TUF §5.4: timestamp. */
  private async updateTimestamp(): Promise<TimestampSigned> {
    const ts = await this.fromMirrors('metadata/timestamp.json', TUF_TIMESTAMP_BYTES_MAX, (b) => {
      const t = verifyEnvelope<TimestampSigned>(b, 'timestamp', this.state.root).signed;
      const old = this.state.timestamp;
      if (old !== undefined) {
        if (t.version < old.version)
          throw fail(
            'rollback',
            `timestamp version ${t.version} < trusted ${old.version}`,
            'rollback',
          );
        const ov = old.meta['snapshot.json']?.version ?? 0;
        if ((t.meta['snapshot.json']?.version ?? 0) < ov)
          throw fail('rollback', 'snapshot version in timestamp went backwards', 'rollback');
      }
      this.checkFresh('timestamp', t.expires);
      return t;
    });
    if (ts === undefined)
      throw fail('notFound', 'no mirror has timestamp.json', 'indefinite freeze');
    const snapMeta = ts.meta['snapshot.json'];
    if (snapMeta === undefined)
      throw fail('metadata', 'timestamp.json lacks snapshot.json', 'mix-and-match');
    this.state.timestamp = ts;
    return ts;
  }

  /** TUF §5.5: snapshot. */
  private async updateSnapshot(info: MetaFile): Promise<SnapshotSigned> {
    const snap = await this.fromMirrors(
      'metadata/snapshot.json',
      info.length ?? TUF_SNAPSHOT_BYTES_MAX,
      (b) => {
        checkFile(b, info, 'snapshot.json');
        const s = verifyEnvelope<SnapshotSigned>(b, 'snapshot', this.state.root).signed;
        if (s.version !== info.version)
          throw fail(
            'metadata',
            `snapshot version ${s.version} is not ${info.version} named by timestamp`,
            'mix-and-match',
          );
        const old = this.state.snapshot;
        if (old !== undefined) {
          for (const [name, m] of Object.entries(old.meta)) {
            const now = s.meta[name];
            if (now === undefined) throw fail('rollback', `snapshot dropped ${name}`, 'rollback');
            if (now.version < m.version)
              throw fail('rollback', `${name} version went backwards in snapshot`, 'rollback');
          }
        }
        this.checkFresh('snapshot', s.expires);
        return s;
      },
    );
    if (snap === undefined)
      throw fail('notFound', 'no mirror has snapshot.json', 'indefinite freeze');
    this.state.snapshot = snap;
    return snap;
  }

  /** TUF §5.6: targets. */
  private async updateTargets(info: MetaFile): Promise<TargetsSigned> {
    const got = await this.fromMirrors(
      'metadata/targets.json',
      info.length ?? TUF_TARGETS_BYTES_MAX,
      (b) => {
        checkFile(b, info, 'targets.json');
        const t = verifyEnvelope<TargetsSigned>(b, 'targets', this.state.root).signed;
        if (t.version !== info.version)
          throw fail(
            'metadata',
            `targets version ${t.version} is not ${info.version} named by snapshot`,
            'mix-and-match',
          );
        if (this.state.targets !== undefined && t.version < this.state.targets.version)
          throw fail('rollback', 'targets version went backwards', 'rollback');
        this.checkFresh('targets', t.expires);
        return { t, b };
      },
    );
    if (got === undefined)
      throw fail('notFound', 'no mirror has targets.json', 'indefinite freeze');
    this.state.targets = got.t;
    this.state.targetsBytes = got.b;
    return got.t;
  }

  /** Runs the whole §5 metadata update; on any error the previous trusted state remains. */
  async refresh(): Promise<TrustedMetadata> {
    const saved = { ...this.state };
    try {
      await this.updateRoot();
      const ts = await this.updateTimestamp();
      const snap = await this.updateSnapshot(ts.meta['snapshot.json'] as MetaFile);
      const tinfo = snap.meta['targets.json'];
      if (tinfo === undefined)
        throw fail('metadata', 'snapshot.json lacks targets.json', 'mix-and-match');
      await this.updateTargets(tinfo);
      return this.state;
    } catch (e) {
      this.state = saved;
      throw e;
    }
  }

  /**
   * TUF §5.7 plus transparency: looks `name` up in trusted targets, downloads at most its
   * length, checks length and hash, checks the Uptane hardware ID, then requires an inclusion
   * proof of its release entry against a witnessed checkpoint.
   */
  async download(name: string): Promise<VerifiedTarget> {
    const { info, role } = await this.findTarget(name);
    checkHardware(name, info, this.init.hardwareId);
    const max = Math.min(info.length, TUF_TARGET_BYTES_MAX);
    const bytes = await this.fromMirrors(`targets/${name}`, max, (b) => {
      checkFile(b, info, `target ${name}`);
      return b;
    });
    if (bytes === undefined)
      throw fail('notFound', `no mirror has target ${name}`, 'indefinite freeze');
    const logged = await this.proveLogged(name, info);
    return { name, role, bytes, info, ...logged };
  }

  /**
   * TUF §5.6.7: a pre-order depth-first search from top-level targets through the delegations
   * whose paths match `name`, in listed order; the first role that lists the target wins. A
   * terminating role ends the search; at most {@link TUF_DELEGATIONS_VISITED_MAX} roles are
   * loaded, and a role already visited is skipped (delegation cycles).
   */
  private async findTarget(name: string): Promise<{ info: TargetFile; role: string }> {
    const top = this.state.targets;
    if (top === undefined)
      throw fail('metadata', 'no trusted targets; refresh first', 'arbitrary installation');
    const visited = new Set<string>(['targets']);
    const notFound = (): TrustError =>
      fail(
        'targetMismatch',
        `target ${name} is not in signed targets metadata`,
        'arbitrary installation',
      );
    const search = async (
      role: string,
      t: TargetsSigned,
    ): Promise<{ info: TargetFile; role: string } | 'stop' | undefined> => {
      const info = t.targets[name];
      if (info !== undefined) return { info, role };
      for (const d of t.delegations?.roles ?? []) {
        if (!d.paths.some((p) => delegationPathMatches(p, name))) continue;
        if (visited.has(d.name)) continue;
        if (visited.size > TUF_DELEGATIONS_VISITED_MAX)
          throw fail(
            'metadata',
            `more than ${TUF_DELEGATIONS_VISITED_MAX} delegated roles searched for ${name}`,
            'slow retrieval / endless delegation',
          );
        visited.add(d.name);
        const child = await this.loadDelegated(d, t.delegations?.keys ?? {});
        const found = await search(d.name, child);
        if (found !== undefined) return found;
        if (d.terminating) return 'stop';
      }
      return undefined;
    };
    const r = await search('targets', top);
    if (r === undefined || r === 'stop') throw notFound();
    return r;
  }

  /** TUF §5.6.7.2: fetch, check against snapshot, verify with the delegator's keys, check fresh. */
  private async loadDelegated(
    d: DelegatedRole,
    keys: Readonly<Record<string, TufKey>>,
  ): Promise<TargetsSigned> {
    const snap = this.state.snapshot;
    const info = snap?.meta[`${d.name}.json`];
    if (info === undefined)
      throw fail('metadata', `snapshot.json lacks ${d.name}.json`, 'mix-and-match');
    if (this.state.delegated === undefined) this.state.delegated = new Map();
    const cache = this.state.delegated as Map<string, TargetsSigned>;
    const known = cache.get(d.name);
    if (known !== undefined && known.version === info.version) return known;
    const t = await this.fromMirrors(
      `metadata/${d.name}.json`,
      info.length ?? TUF_TARGETS_BYTES_MAX,
      (b) => {
        checkFile(b, info, `${d.name}.json`);
        const signed = verifyDelegatedEnvelope(b, d, keys).signed;
        if (signed.version !== info.version)
          throw fail(
            'metadata',
            `${d.name} version ${signed.version} is not ${info.version} named by snapshot`,
            'mix-and-match',
          );
        if (known !== undefined && signed.version < known.version)
          throw fail('rollback', `${d.name} version went backwards`, 'rollback');
        this.checkFresh(d.name, signed.expires);
        return signed;
      },
    );
    if (t === undefined)
      throw fail('notFound', `no mirror has ${d.name}.json`, 'indefinite freeze');
    cache.set(d.name, t);
    return t;
  }

  private async proveLogged(
    name: string,
    info: TargetFile,
  ): Promise<{ checkpoint: string; inclusionProof: Uint8Array[]; cosigners: string[] }> {
    const origin = info.custom.log.origin;
    const policy = this.init.logPolicies.find((p) => p.origin === origin);
    if (policy === undefined)
      throw fail(
        'notLogged',
        `target ${name} is logged in ${origin}, which this client does not trust`,
        'arbitrary installation',
      );
    const note = await this.init.log.checkpoint(origin);
    const w = verifyWitnessedCheckpoint(note, policy, this.init.clock);
    const index = info.custom.log.index;
    if (index >= w.checkpoint.size)
      throw fail(
        'notLogged',
        `target ${name} (log index ${index}) is not yet under a witnessed checkpoint`,
        'arbitrary installation',
      );
    const proof = await this.init.log.inclusionProof(origin, index, w.checkpoint.size);
    const entry = releaseLogEntry(name, {
      length: info.length,
      sha256: info.hashes.sha256,
      version: info.custom.version,
      hardwareIds: info.custom.hardwareIds,
    });
    if (!verifyInclusion(leafHash(entry), index, w.checkpoint.size, proof, w.checkpoint.root)) {
      throw fail(
        'notLogged',
        `no valid inclusion proof for target ${name} at index ${index}`,
        'arbitrary installation',
      );
    }
    return { checkpoint: note, inclusionProof: proof, cosigners: [...w.cosigners] };
  }
}

function checkHardware(name: string, info: TargetFile, hardwareId: string | undefined): void {
  if (
    hardwareId !== undefined &&
    info.custom.hardwareIds.length > 0 &&
    !info.custom.hardwareIds.includes(hardwareId)
  ) {
    throw fail(
      'targetMismatch',
      `target ${name} is for ${info.custom.hardwareIds.join(',')}, not ${hardwareId}`,
      'wrong software',
    );
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k) => b.includes(k));
}

/** Parses root.json without verifying (to obtain its own keys for the self-signature check). */
function parseRootUnsafe(bytes: Uint8Array): RootSigned {
  try {
    const env = JSON.parse(new TextDecoder().decode(bytes)) as Envelope<RootSigned>;
    if (env?.signed?._type !== 'root' || typeof env.signed.roles !== 'object')
      throw new Error('not a root');
    for (const r of ROLE_NAMES)
      if (env.signed.roles[r] === undefined) throw new Error(`no role ${r}`);
    return env.signed;
  } catch (cause) {
    throw new TrustError(TRUST_ERROR_CODES.metadata, 'root.json is not root metadata', { cause });
  }
}

/** What an Uptane primary (hub) hands a secondary (tile). */
export interface SecondaryImage {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** The targets.json bytes the primary verified. */
  readonly targetsMetadata: Uint8Array;
}

/** A secondary's pinned trust: the root it was provisioned with, its hardware ID, what it runs. */
export interface SecondaryState {
  readonly root: RootSigned;
  readonly hardwareId: string;
  readonly installedVersion: number;
  readonly nowMs: number;
}

/**
 * Uptane partial verification on a secondary: the targets metadata must carry a threshold of
 * targets-role signatures under the secondary's pinned root, be unexpired, list the image for
 * this hardware with matching length and hash, and not be older than what is installed.
 * @returns the new installed version.
 */
export function verifySecondaryImage(image: SecondaryImage, state: SecondaryState): number {
  const t = verifyEnvelope<TargetsSigned>(image.targetsMetadata, 'targets', state.root).signed;
  if (isExpired(t.expires, state.nowMs))
    throw fail('expired', `targets.json expired at ${t.expires}`, 'indefinite freeze');
  const info = t.targets[image.name];
  if (info === undefined)
    throw fail(
      'targetMismatch',
      `image ${image.name} is not in the targets metadata`,
      'arbitrary installation',
    );
  if (info.custom.hardwareIds.length === 0 || !info.custom.hardwareIds.includes(state.hardwareId)) {
    throw fail(
      'targetMismatch',
      `image ${image.name} is not for hardware ${state.hardwareId}`,
      'wrong software',
    );
  }
  checkFile(image.bytes, info, `image ${image.name}`);
  if (info.custom.version < state.installedVersion)
    throw fail(
      'rollback',
      `image version ${info.custom.version} < installed ${state.installedVersion}`,
      'rollback',
    );
  return info.custom.version;
}
