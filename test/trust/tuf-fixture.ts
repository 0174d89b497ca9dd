/** Shared setup of the TUF tests: a repository, a durable log with three witnesses, a client. */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../src/core/index.ts';
import {
  CompositeSigner,
  compositeNoteSigner,
  compositeNoteVerifier,
  cosignatureVerifier,
  cosigner,
  DurableLog,
  ed25519KeyGen,
  isTrustError,
  LogServer,
  localWitness,
  MemoryRepoStore,
  MemoryWitnessState,
  type RoleSigners,
  storeMirror,
  TufClient,
  TufRepository,
  Witness,
} from '../../src/trust/index.ts';

/** A deterministic composite signer for a label. */
export function signerFor(label: string): CompositeSigner {
  let s = SIGNERS.get(label);
  if (s === undefined) {
    s = new CompositeSigner(
      'MLDSA65-Ed25519-SHA512',
      new Uint8Array(createHash('sha512').update(label).digest()),
    );
    SIGNERS.set(label, s);
  }
  return s;
}
const SIGNERS = new Map<string, CompositeSigner>();

export const ORIGIN = 'genesis.test/releases';
export const START_MS = Date.parse('2026-01-01T00:00:00Z');

export interface Fixture {
  clock: VirtualClock;
  store: MemoryRepoStore;
  repo: TufRepository;
  server: LogServer;
  signers: RoleSigners;
  logSignerKey: CompositeSigner;
  witnessState: MemoryWitnessState[];
  client(mirrorStore?: MemoryRepoStore, hardwareId?: string): TufClient;
  policy: {
    origin: string;
    logVerifiers: ReturnType<typeof compositeNoteVerifier>[];
    witnesses: ReturnType<typeof cosignatureVerifier>[];
    quorum: number;
  };
}

export function makeFixture(): Fixture {
  const clock = new VirtualClock(START_MS);
  const dir = mkdtempSync(join(tmpdir(), 'genesis-tuf-'));
  const log = DurableLog.open(join(dir, 'log.db'), {
    create: true,
    origin: ORIGIN,
    clock,
    synchronous: 'normal',
  });
  const logSignerKey = signerFor('log');
  const noteSigner = compositeNoteSigner(ORIGIN, logSignerKey);
  const logVerifier = compositeNoteVerifier(ORIGIN, logSignerKey.alg, logSignerKey.publicKey);
  const witnessKeys = [0, 1, 2].map(() => ed25519KeyGen());
  const witnessState = witnessKeys.map(() => new MemoryWitnessState());
  const witnesses = witnessKeys.map(
    (k, i) =>
      new Witness({
        cosigner: cosigner(`hub${i}.test`, k.secretKey),
        logs: [{ origin: ORIGIN, verifiers: [logVerifier] }],
        state: witnessState[i] as MemoryWitnessState,
        clock,
      }),
  );
  const server = new LogServer(log, [noteSigner], witnesses.map(localWitness), clock);
  const signers: RoleSigners = {
    root: [signerFor('root-1')],
    targets: [signerFor('targets-1'), signerFor('targets-2'), signerFor('targets-3')],
    snapshot: [signerFor('snapshot-1')],
    timestamp: [signerFor('timestamp-1')],
  };
  const store = new MemoryRepoStore();
  const repo = new TufRepository(
    store,
    signers,
    clock,
    (entry) => ({ origin: ORIGIN, index: log.append(entry).firstIndex }),
    {
      root: 1,
      targets: 2,
      snapshot: 1,
      timestamp: 1,
    },
  );
  repo.init();
  const policy = {
    origin: ORIGIN,
    logVerifiers: [logVerifier],
    witnesses: witnessKeys.map((k, i) => cosignatureVerifier(`hub${i}.test`, k.publicKey)),
    quorum: 2,
  };
  const trustedRoot = store.read('metadata/1.root.json') as Uint8Array;
  return {
    clock,
    store,
    repo,
    server,
    signers,
    logSignerKey,
    witnessState,
    policy,
    client: (mirrorStore = store, hardwareId = 'tile-v1') =>
      new TufClient({
        trustedRoot,
        mirrors: [storeMirror('primary', mirrorStore)],
        clock,
        log: server,
        logPolicies: [policy],
        hardwareId,
      }),
  };
}

/** A copy of a store (an attacker-controlled mirror starts as an honest copy). */
export function cloneStore(s: MemoryRepoStore): MemoryRepoStore {
  const c = new MemoryRepoStore();
  for (const [k, v] of s.files) c.write(k, v);
  return c;
}

/** Awaits `p`, which must fail with a TrustError; returns its code and the attack it names. */
export async function failure(p: Promise<unknown>): Promise<{ code: string; attack: unknown }> {
  try {
    await p;
  } catch (e) {
    if (isTrustError(e)) return { code: e.code, attack: e.details.attack };
    throw e;
  }
  throw new Error('expected a failure');
}
