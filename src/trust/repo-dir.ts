/**
 * An update repository on disk, as `genesis update` uses it:
 *
 *     <dir>/keys/{root,targets,snapshot,timestamp,log}.{key,pub}   composite keys (0600)
 *     <dir>/keys/delegated/<role>.{key,pub}                         delegated roles' keys
 *     <dir>/metadata/<role>.json                                    delegated targets roles
 *     <dir>/witnesses/<name>.{key,pub}, <dir>/witnesses/state-<name>.json   local witnesses
 *     <dir>/metadata/{1.root,root,targets,snapshot,timestamp}.json
 *     <dir>/targets/<name>
 *     <dir>/log.db                                                  the release log
 *     <dir>/policy.json   {origin, log: {name, alg, publicKey}, witnesses: [{name, publicKey}], quorum}
 *
 * The witnesses here are local stand-ins for independent parties (in `genesis up` the hubs
 * witness over the transport); `policy.json` is what a client pins besides `1.root.json`.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../core/index.ts';
import { fromBase64Strict, toBase64 } from './bytes.ts';
import { type CompositeAlgorithm, CompositeSigner, DEFAULT_COMPOSITE_ALG } from './composite.ts';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';
import { generateKeyPair, readPrivateKey, writeKeyPair } from './keyfile.ts';
import { DurableLog } from './log.ts';
import { LogServer, localWitness } from './log-server.ts';
import {
  compositeNoteSigner,
  compositeNoteVerifier,
  cosignatureVerifier,
  cosigner,
} from './note.ts';
import {
  type DelegatedRole,
  DirectoryRepoStore,
  isDelegatedRoleName,
  ROLE_NAMES,
  type RoleName,
  type RoleSigners,
  TufRepository,
} from './tuf.ts';
import { storeMirror, TufClient, type VerifiedTarget } from './tuf-client.ts';
import { type CheckpointPolicy, FileWitnessState, Witness } from './witness.ts';

/** Default number of local witnesses created by {@link initRepoDir}. */
export const REPO_WITNESSES_DEFAULT = 3;

/** The pinned client policy stored in policy.json. */
export interface RepoPolicyFile {
  readonly origin: string;
  readonly log: {
    readonly name: string;
    readonly alg: CompositeAlgorithm;
    readonly publicKey: string;
  };
  readonly witnesses: readonly { readonly name: string; readonly publicKey: string }[];
  readonly quorum: number;
}

/** Creates a repository directory with fresh keys, witnesses, log and metadata v1. */
export function initRepoDir(
  dir: string,
  origin: string,
  clock: Clock,
  witnesses = REPO_WITNESSES_DEFAULT,
): RepoPolicyFile {
  if (existsSync(join(dir, 'metadata', 'root.json')))
    throw new TrustError(TRUST_ERROR_CODES.exists, `${dir} already holds an update repository`);
  for (const d of ['keys', 'witnesses', 'metadata', 'targets'])
    mkdirSync(join(dir, d), { recursive: true });
  for (const role of [...ROLE_NAMES, 'log'])
    writeKeyPair(
      join(dir, 'keys', role),
      generateKeyPair(DEFAULT_COMPOSITE_ALG, role === 'log' ? origin : `${origin}/${role}`),
    );
  const ws: { name: string; publicKey: string }[] = [];
  for (let i = 1; i <= witnesses; i++) {
    const kp = generateKeyPair('Ed25519', `witness${i}.${origin}`);
    writeKeyPair(join(dir, 'witnesses', `witness${i}`), kp);
    ws.push({ name: kp.name, publicKey: toBase64(kp.publicKey) });
  }
  const logKey = readPrivateKey(join(dir, 'keys', 'log.key'), DEFAULT_COMPOSITE_ALG);
  const policy: RepoPolicyFile = {
    origin,
    log: { name: origin, alg: DEFAULT_COMPOSITE_ALG, publicKey: toBase64(logKey.publicKey) },
    witnesses: ws,
    quorum: Math.floor(witnesses / 2) + 1,
  };
  writeFileSync(join(dir, 'policy.json'), `${JSON.stringify(policy, null, 2)}\n`);
  DurableLog.open(join(dir, 'log.db'), { create: true, origin, clock }).close();
  const repo = openRepoDir(dir, clock);
  try {
    repo.repository.init();
  } finally {
    repo.close();
  }
  return policy;
}

/** Reads policy.json into a {@link CheckpointPolicy}. */
export function readRepoPolicy(path: string): CheckpointPolicy {
  let p: RepoPolicyFile;
  try {
    p = JSON.parse(readFileSync(path, 'utf8')) as RepoPolicyFile;
  } catch (cause) {
    throw new TrustError(TRUST_ERROR_CODES.notFound, `cannot read policy ${path}`, { cause });
  }
  const key = (b64: string, what: string): Uint8Array => {
    const b = fromBase64Strict(b64);
    if (b === undefined)
      throw new TrustError(TRUST_ERROR_CODES.keyFormat, `${path}: ${what} is not base64`);
    return b;
  };
  return {
    origin: p.origin,
    logVerifiers: [compositeNoteVerifier(p.log.name, p.log.alg, key(p.log.publicKey, 'log key'))],
    witnesses: p.witnesses.map((w) =>
      cosignatureVerifier(w.name, key(w.publicKey, `witness ${w.name}`)),
    ),
    quorum: p.quorum,
  };
}

/** An opened repository directory. */
export interface RepoDir {
  readonly repository: TufRepository;
  /** Signer of a delegated role whose key lives in `keys/delegated/<role>.key`. */
  delegateSigner(role: string): CompositeSigner;
  /**
   * Delegates `paths` to a new role with a fresh composite key in `keys/delegated/` (in a real
   * deployment the team generates its key and hands over only the public half).
   */
  delegate(
    role: string,
    paths: readonly string[],
    options?: { readonly terminating?: boolean; readonly parent?: string },
  ): DelegatedRole;
  readonly server: LogServer;
  readonly store: DirectoryRepoStore;
  close(): void;
}

/** Opens a repository directory with its private keys (for publishing). */
export function openRepoDir(dir: string, clock: Clock): RepoDir {
  if (!existsSync(join(dir, 'policy.json')))
    throw new TrustError(
      TRUST_ERROR_CODES.notFound,
      `${dir} is not an update repository (run genesis update init)`,
    );
  const signer = (role: string): CompositeSigner => {
    const k = readPrivateKey(join(dir, 'keys', `${role}.key`), DEFAULT_COMPOSITE_ALG);
    return new CompositeSigner(DEFAULT_COMPOSITE_ALG, k.secretKey);
  };
  const signers = Object.fromEntries(
    ROLE_NAMES.map((r) => [r, [signer(r)]]),
  ) as unknown as RoleSigners;
  const policy = JSON.parse(readFileSync(join(dir, 'policy.json'), 'utf8')) as RepoPolicyFile;
  const log = DurableLog.open(join(dir, 'log.db'), { clock });
  const logVerifier = compositeNoteVerifier(
    policy.log.name,
    policy.log.alg,
    fromBase64Strict(policy.log.publicKey) ?? new Uint8Array(),
  );
  const witnesses = policy.witnesses.map((w, i) => {
    const k = readPrivateKey(join(dir, 'witnesses', `witness${i + 1}.key`), 'Ed25519');
    return localWitness(
      new Witness({
        cosigner: cosigner(w.name, k.secretKey),
        logs: [{ origin: policy.origin, verifiers: [logVerifier] }],
        state: new FileWitnessState(join(dir, 'witnesses', `state-witness${i + 1}.json`)),
        clock,
      }),
    );
  });
  const server = new LogServer(
    log,
    [compositeNoteSigner(policy.log.name, signer('log'))],
    witnesses,
    clock,
  );
  const store = new DirectoryRepoStore(dir);
  const repository = new TufRepository(store, signers, clock, (entry) => ({
    origin: policy.origin,
    index: log.append(entry).firstIndex,
  }));
  const delegateSigner = (role: string): CompositeSigner => {
    if (!isDelegatedRoleName(role))
      throw new TrustError(TRUST_ERROR_CODES.metadata, `bad delegated role name "${role}"`);
    return signer(join('delegated', role));
  };
  return {
    repository,
    server,
    store,
    delegateSigner,
    delegate: (role, paths, options = {}) => {
      if (!isDelegatedRoleName(role))
        throw new TrustError(TRUST_ERROR_CODES.metadata, `bad delegated role name "${role}"`);
      const keyPath = join(dir, 'keys', 'delegated', role);
      if (existsSync(`${keyPath}.key`))
        throw new TrustError(TRUST_ERROR_CODES.exists, `role ${role} already has a key`);
      mkdirSync(join(dir, 'keys', 'delegated'), { recursive: true });
      const kp = generateKeyPair(DEFAULT_COMPOSITE_ALG, `${policy.origin}/${role}`);
      writeKeyPair(keyPath, kp);
      try {
        return repository.delegate(role, [delegateSigner(role)], paths, {
          ...(options.terminating === undefined ? {} : { terminating: options.terminating }),
          ...(options.parent === undefined || options.parent === 'targets'
            ? {}
            : { parent: { role: options.parent, signers: [delegateSigner(options.parent)] } }),
        });
      } catch (e) {
        // The repository refused (bad paths, unknown parent): leave no orphan key behind.
        rmSync(`${keyPath}.key`, { force: true });
        rmSync(`${keyPath}.pub`, { force: true });
        throw e;
      }
    },
    close: () => log.close(),
  };
}

/** Verifies and fetches a target from a repository directory as a client would. */
export async function verifyFromRepoDir(
  dir: string,
  name: string,
  clock: Clock,
  options: { trustedRoot?: string; policy?: string; hardwareId?: string } = {},
): Promise<{ target: VerifiedTarget; client: TufClient }> {
  const store = new DirectoryRepoStore(dir);
  const rootPath = options.trustedRoot ?? join(dir, 'metadata', '1.root.json');
  if (!existsSync(rootPath))
    throw new TrustError(TRUST_ERROR_CODES.notFound, `no trusted root at ${rootPath}`);
  const policy = readRepoPolicy(options.policy ?? join(dir, 'policy.json'));
  const log = DurableLog.open(join(dir, 'log.db'), { clock, readonly: true });
  try {
    const server = new LogServer(log, [], [], clock);
    const client = new TufClient({
      trustedRoot: new Uint8Array(readFileSync(rootPath)),
      mirrors: [storeMirror(dir, store)],
      clock,
      log: server,
      logPolicies: [policy],
      ...(options.hardwareId === undefined ? {} : { hardwareId: options.hardwareId }),
    });
    await client.refresh();
    return { target: await client.download(name), client };
  } finally {
    log.close();
  }
}

/** Role names re-exported for CLI output ordering. */
export const REPO_ROLES: readonly RoleName[] = ROLE_NAMES;
