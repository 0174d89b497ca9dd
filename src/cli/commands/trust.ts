/**
 * `genesis keys new|show`, `genesis log append|proof|verify|serve` and
 * `genesis update init|publish|verify|status`: the trust layer from the command line.
 * Every command prints a short human summary, or one JSON line with `--json`.
 */

import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { SystemClock } from '../../core/index.ts';
import {
  type CompositeAlgorithm,
  CompositeSigner,
  compositeNoteSigner,
  compositeNoteType,
  DirectoryRepoStore,
  DurableLog,
  delegationTree,
  generateKeyPair,
  HYBRID_KEM_ALG,
  initRepoDir,
  type KeyAlgorithm,
  LogServer,
  leafHash,
  NOTE_TYPE_ED25519,
  noteKeyId,
  openRepoDir,
  parseCheckpoint,
  parseNote,
  REPO_ROLES,
  readPrivateKey,
  readPublicKey,
  readTargetsRole,
  serveTiles,
  TrustError,
  verifyConsistency,
  verifyFromRepoDir,
  verifyInclusion,
  writeKeyPair,
} from '../../trust/index.ts';
import { CliError, parseIntFlag, printJson } from '../util.ts';

const ALG_FLAGS: Readonly<Record<string, KeyAlgorithm>> = {
  composite: 'MLDSA65-Ed25519-SHA512',
  'mldsa65-ed25519': 'MLDSA65-Ed25519-SHA512',
  'mldsa44-ed25519': 'MLDSA44-Ed25519-SHA512',
  ed25519: 'Ed25519',
  kem: HYBRID_KEM_ALG,
  'x25519-mlkem768': HYBRID_KEM_ALG,
};

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const fingerprint = (pk: Uint8Array): string =>
  `SHA256:${createHash('sha256').update(pk).digest('base64').replace(/=+$/, '')}`;

function out(json: boolean | undefined, value: unknown, human: string): void {
  if (json === true) printJson(value);
  else process.stdout.write(`${human}\n`);
}

function noteKeyIdOf(alg: KeyAlgorithm, name: string, pk: Uint8Array): string | undefined {
  if (alg === 'Ed25519')
    return noteKeyId(name, Uint8Array.of(NOTE_TYPE_ED25519), pk).toString(16).padStart(8, '0');
  if (alg === HYBRID_KEM_ALG) return undefined;
  return noteKeyId(name, compositeNoteType(alg as CompositeAlgorithm), pk)
    .toString(16)
    .padStart(8, '0');
}

function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description(
      'create and inspect identity keys (composite ML-DSA-65 + Ed25519, Ed25519, X25519+ML-KEM-768)',
    );
  keys
    .command('new')
    .description('create <out>.key (mode 0600) and <out>.pub')
    .requiredOption('--name <name>', 'key name (e.g. eu1.h1 or example.com/log)')
    .option('--alg <alg>', `algorithm: ${Object.keys(ALG_FLAGS).join(', ')}`, 'composite')
    .option('--out <prefix>', 'output path prefix (default: ./<name with / replaced>)')
    .option('--json', 'print JSON')
    .action((o: { name: string; alg: string; out?: string; json?: boolean }) => {
      const alg = ALG_FLAGS[o.alg];
      if (alg === undefined)
        throw new CliError(
          'CLI_BAD_ALG',
          `--alg "${o.alg}" is not one of ${Object.keys(ALG_FLAGS).join(', ')}`,
        );
      const kp = generateKeyPair(alg, o.name);
      const prefix = resolve(o.out ?? o.name.replace(/[^A-Za-z0-9._-]/g, '_'));
      const paths = writeKeyPair(prefix, kp);
      const info = {
        alg,
        name: kp.name,
        fingerprint: fingerprint(kp.publicKey),
        noteKeyId: noteKeyIdOf(alg, kp.name, kp.publicKey),
        ...paths,
      };
      out(
        o.json,
        info,
        `created ${alg} key "${kp.name}"\n  private ${paths.privatePath} (mode 600)\n  public  ${paths.publicPath}\n  ${info.fingerprint}${info.noteKeyId === undefined ? '' : `  note key ID ${info.noteKeyId}`}`,
      );
    });
  keys
    .command('show <file>')
    .description('show a key file (checks permissions, lengths and that public matches private)')
    .option('--json', 'print JSON')
    .action((file: string, o: { json?: boolean }) => {
      const raw = JSON.parse(readFileSync(file, 'utf8')) as { kind?: string };
      const k = raw.kind === 'private' ? readPrivateKey(file) : readPublicKey(file);
      const mode = (statSync(file).mode & 0o777).toString(8);
      const info = {
        file: resolve(file),
        kind: raw.kind,
        alg: k.alg,
        name: k.name,
        publicKeyBytes: k.publicKey.length,
        fingerprint: fingerprint(k.publicKey),
        noteKeyId: noteKeyIdOf(k.alg, k.name, k.publicKey),
        mode,
      };
      out(
        o.json,
        info,
        `${info.kind} ${info.alg} key "${info.name}" (${info.publicKeyBytes}-byte public key, mode ${mode})\n  ${info.fingerprint}${info.noteKeyId === undefined ? '' : `  note key ID ${info.noteKeyId}`}`,
      );
    });
}

function readEntries(files: readonly string[], data: readonly string[]): Uint8Array[] {
  const entries = [
    ...files.map((f) => new Uint8Array(readFileSync(f))),
    ...data.map((d) => new TextEncoder().encode(d)),
  ];
  if (entries.length === 0)
    throw new CliError('CLI_NO_ENTRIES', 'give entries with --data TEXT or FILE arguments');
  return entries;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function registerLog(program: Command): void {
  const log = program.command('log').description('the durable RFC 9162 transparency log');
  log
    .command('append [files...]')
    .description(
      'append entries (files and/or --data) as one durable batch; with --key, sign a checkpoint',
    )
    .requiredOption('--db <path>', 'log database')
    .option('--origin <origin>', 'origin when creating a new log', 'genesis.local/log')
    .option('--data <text>', 'an entry given as text (repeatable)', collect, [])
    .option('--key <file>', 'composite private key to sign a C2SP checkpoint with')
    .option('--json', 'print JSON')
    .action(
      (
        files: string[],
        o: { db: string; origin: string; data: string[]; key?: string; json?: boolean },
      ) => {
        const entries = readEntries(files, o.data);
        const l = DurableLog.open(o.db, { create: true, origin: o.origin });
        try {
          const r = l.appendBatch(entries);
          let checkpoint: string | undefined;
          if (o.key !== undefined) {
            const k = readPrivateKey(o.key);
            if (k.alg === 'Ed25519' || k.alg === HYBRID_KEM_ALG)
              throw new CliError('CLI_BAD_KEY', '--key must be a composite signing key');
            const server = new LogServer(
              l,
              [compositeNoteSigner(l.origin, new CompositeSigner(k.alg, k.secretKey))],
              [],
              new SystemClock(),
            );
            checkpoint = server.signedCheckpoint();
            l.saveCheckpointNote(l.size, checkpoint);
          }
          const info = {
            origin: l.origin,
            firstIndex: r.firstIndex,
            appended: entries.length,
            size: r.size,
            root: b64(r.root),
            checkpoint,
          };
          out(
            o.json,
            info,
            `appended ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} at index ${r.firstIndex} (durable)\n  size ${r.size}  root ${info.root}${checkpoint === undefined ? '' : `\n  signed checkpoint stored (C2SP note, ${checkpoint.length} bytes; --json prints it)`}`,
          );
        } finally {
          l.close();
        }
      },
    );
  log
    .command('proof')
    .description(
      'inclusion proof of --index (or consistency proof from --from) at --size (default: current)',
    )
    .requiredOption('--db <path>', 'log database')
    .option('--index <n>', 'leaf index')
    .option('--from <size>', 'old tree size for a consistency proof')
    .option('--size <n>', 'tree size (default: current size)')
    .option('--json', 'print JSON (feed it to genesis log verify --proof)')
    .action((o: { db: string; index?: string; from?: string; size?: string; json?: boolean }) => {
      const l = DurableLog.open(o.db, { readonly: true });
      try {
        const size = o.size === undefined ? l.size : parseIntFlag(o.size, '--size', 1, l.size);
        if ((o.index === undefined) === (o.from === undefined))
          throw new CliError('CLI_BAD_PROOF', 'give exactly one of --index N or --from SIZE');
        if (o.index !== undefined) {
          const index = parseIntFlag(o.index, '--index', 0, size - 1);
          const proof = l.inclusionProof(index, size);
          const info = {
            type: 'inclusion',
            origin: l.origin,
            index,
            size,
            leafHash: b64(l.leafHashAt(index)),
            root: b64(l.rootAt(size)),
            proof: proof.map(b64),
          };
          out(
            o.json,
            info,
            `inclusion of entry ${index} in tree ${size} (${proof.length} hashes)\n  root ${info.root}\n${proof.map((p, i) => `  ${i} ${hexOf(p)}`).join('\n')}`,
          );
        } else {
          const from = parseIntFlag(o.from as string, '--from', 1, size);
          const proof = l.consistencyProof(from, size);
          const info = {
            type: 'consistency',
            origin: l.origin,
            size1: from,
            size2: size,
            root1: b64(l.rootAt(from)),
            root2: b64(l.rootAt(size)),
            proof: proof.map(b64),
          };
          out(
            o.json,
            info,
            `consistency ${from} → ${size} (${proof.length} hashes)\n${proof.map((p, i) => `  ${i} ${hexOf(p)}`).join('\n')}`,
          );
        }
      } finally {
        l.close();
      }
    });
  log
    .command('verify')
    .description(
      'full integrity check of --db, or verify a proof file from "log proof --json" (no database needed)',
    )
    .option('--db <path>', 'log database to check entry by entry')
    .option('--proof <file>', 'proof JSON to verify offline')
    .option(
      '--entry <file>',
      'with an inclusion proof: the entry bytes, to check they are the proven leaf',
    )
    .option('--json', 'print JSON')
    .action((o: { db?: string; proof?: string; entry?: string; json?: boolean }) => {
      if (o.proof !== undefined) return verifyProofFile(o.proof, o.entry, o.json);
      if (o.db === undefined) throw new CliError('CLI_BAD_ARGS', 'give --db PATH or --proof FILE');
      const l = DurableLog.open(o.db, { readonly: true });
      try {
        const t0 = performance.now();
        const r = l.verifyFull();
        const cp = l.latestCheckpointNote();
        const info = {
          ok: true,
          origin: l.origin,
          size: r.size,
          root: b64(r.root),
          treeHeads: r.treeHeads,
          checkpointSize: cp?.size,
          ms: Math.round(performance.now() - t0),
        };
        out(
          o.json,
          info,
          `ok: ${r.size} entries rehashed, ${r.treeHeads} tree heads recomputed in ${info.ms} ms\n  root ${info.root}${cp === undefined ? '' : `\n  last checkpoint at size ${cp.size}`}`,
        );
      } finally {
        l.close();
      }
    });
  log
    .command('serve')
    .description('serve the log over HTTP in the C2SP tlog-tiles layout (/checkpoint, /tile/...)')
    .requiredOption('--db <path>', 'log database')
    .option('--port <n>', 'port (0 = any free port)', '8470')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--json', 'print the bound address as JSON')
    .action(async (o: { db: string; port: string; host: string; json?: boolean }) => {
      const l = DurableLog.open(o.db, { readonly: true });
      const { server, port } = await serveTiles(
        l,
        parseIntFlag(o.port, '--port', 0, 65535),
        o.host,
      );
      out(
        o.json,
        { url: `http://${o.host}:${port}/`, size: l.size },
        `serving ${l.origin} (${l.size} entries) at http://${o.host}:${port}/checkpoint and /tile/...; Ctrl-C stops`,
      );
      await new Promise<void>((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      await new Promise<void>((r) => server.close(() => r()));
      l.close();
    });
}

function verifyProofFile(
  path: string,
  entryPath: string | undefined,
  json: boolean | undefined,
): void {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const dec = (s: unknown): Uint8Array => new Uint8Array(Buffer.from(String(s), 'base64'));
  const proof = Array.isArray(p.proof) ? p.proof.map(dec) : [];
  let ok: boolean;
  if (p.type === 'inclusion') {
    let lh = dec(p.leafHash);
    if (entryPath !== undefined) {
      const mine = leafHash(new Uint8Array(readFileSync(entryPath)));
      if (Buffer.compare(mine, lh) !== 0)
        throw new CliError(
          'CLI_ENTRY_MISMATCH',
          `${entryPath} is not the entry this proof is about`,
        );
      lh = mine;
    }
    ok = verifyInclusion(lh, Number(p.index), Number(p.size), proof, dec(p.root));
  } else if (p.type === 'consistency') {
    ok = verifyConsistency(Number(p.size1), Number(p.size2), proof, dec(p.root1), dec(p.root2));
  } else
    throw new CliError('CLI_BAD_PROOF', `${path} is not a proof from genesis log proof --json`);
  if (!ok)
    throw new TrustError('TRUST_BAD_SIGNATURE', `${p.type} proof in ${path} does not verify`);
  out(
    json,
    { ok, type: p.type },
    `ok: ${String(p.type)} proof verifies (RFC 9162 §2.1.${p.type === 'inclusion' ? '3' : '4'}.2)`,
  );
}

function registerUpdate(program: Command): void {
  const up = program
    .command('update')
    .description('TUF-signed updates, logged in a witnessed transparency log');
  up.command('init')
    .description(
      'create an update repository: composite role keys, release log, local witnesses, root v1',
    )
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--origin <origin>', 'release log origin', 'genesis.local/releases')
    .option('--witnesses <n>', 'local witnesses to create', '3')
    .option('--json', 'print JSON')
    .action((o: { repo: string; origin: string; witnesses: string; json?: boolean }) => {
      const policy = initRepoDir(
        resolve(o.repo),
        o.origin,
        new SystemClock(),
        parseIntFlag(o.witnesses, '--witnesses', 1, 16),
      );
      out(
        o.json,
        {
          repo: resolve(o.repo),
          origin: policy.origin,
          witnesses: policy.witnesses.map((w) => w.name),
          quorum: policy.quorum,
        },
        `initialised ${resolve(o.repo)}\n  roles ${REPO_ROLES.join(', ')} (composite ML-DSA-65+Ed25519 keys in keys/, mode 600)\n  release log ${policy.origin}, ${policy.witnesses.length} witnesses, quorum ${policy.quorum}\n  clients pin metadata/1.root.json and policy.json`,
      );
    });
  up.command('publish <file>')
    .description(
      'log the release, sign targets/snapshot/timestamp, and have the witnesses cosign a checkpoint',
    )
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--name <name>', 'target name (default: file name)')
    .option('--hardware <ids>', 'comma-separated hardware IDs the target is for (Uptane)', '')
    .option('--role <role>', 'sign with this delegated role (see update delegate)')
    .option('--json', 'print JSON')
    .action(
      async (
        file: string,
        o: { repo: string; name?: string; hardware: string; role?: string; json?: boolean },
      ) => {
        const r = openRepoDir(resolve(o.repo), new SystemClock());
        try {
          const hw = o.hardware
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s.length > 0);
          const name = o.name ?? basename(file);
          const p = r.repository.publish(
            name,
            new Uint8Array(readFileSync(file)),
            hw,
            o.role === undefined
              ? undefined
              : { role: o.role, signers: [r.delegateSigner(o.role)] },
          );
          const round = await r.server.publishCheckpoint();
          const info = {
            name,
            role: p.role,
            version: p.version,
            sha256: p.sha256,
            logIndex: p.logIndex,
            checkpointSize: round.size,
            cosigners: round.cosigners,
            failures: round.failures,
          };
          out(
            o.json,
            info,
            `published ${name} v${p.version} in role ${p.role} (sha256 ${p.sha256.slice(0, 16)}…)\n  release log index ${p.logIndex}; checkpoint size ${round.size} cosigned by ${round.cosigners.length} witnesses: ${round.cosigners.join(', ')}`,
          );
        } finally {
          r.close();
        }
      },
    );
  up.command('delegate')
    .description('delegate target names matching --paths to a new role with its own key (TUF §4.5)')
    .requiredOption('--repo <dir>', 'repository directory')
    .requiredOption('--role <role>', 'name of the new role (e.g. apps)')
    .requiredOption('--paths <patterns...>', "target name patterns, e.g. 'apps/*' (* stops at /)")
    .option('--terminating', 'targets matching these paths are searched for nowhere else')
    .option('--parent <role>', 'delegating role (default: top-level targets)')
    .option('--json', 'print JSON')
    .action(
      (o: {
        repo: string;
        role: string;
        paths: string[];
        terminating?: boolean;
        parent?: string;
        json?: boolean;
      }) => {
        const r = openRepoDir(resolve(o.repo), new SystemClock());
        try {
          const d = r.delegate(o.role, o.paths, {
            terminating: o.terminating === true,
            ...(o.parent === undefined ? {} : { parent: o.parent }),
          });
          out(
            o.json,
            { ...d, parent: o.parent ?? 'targets' },
            `delegated ${d.paths.join(', ')} to role ${d.name}${d.terminating ? ' (terminating)' : ''} from ${o.parent ?? 'targets'}\n  key: keys/delegated/${d.name}.key; publish with: genesis update publish FILE --repo ${o.repo} --role ${d.name} --name ${d.paths[0]?.replace(/[*?]/g, 'x') ?? ''}`,
          );
        } finally {
          r.close();
        }
      },
    );
  up.command('verify <name>')
    .description(
      'run the TUF client (§5) against the repository and check the target is in the witnessed log',
    )
    .requiredOption('--repo <dir>', 'repository (mirror) directory')
    .option('--root <file>', 'trusted root.json (default: <repo>/metadata/1.root.json)')
    .option('--policy <file>', 'witness policy (default: <repo>/policy.json)')
    .option('--hardware <id>', "this device's hardware ID")
    .option('--out <file>', 'write the verified target here')
    .option('--json', 'print JSON')
    .action(
      async (
        name: string,
        o: {
          repo: string;
          root?: string;
          policy?: string;
          hardware?: string;
          out?: string;
          json?: boolean;
        },
      ) => {
        const { target, client } = await verifyFromRepoDir(
          resolve(o.repo),
          name,
          new SystemClock(),
          {
            ...(o.root === undefined ? {} : { trustedRoot: o.root }),
            ...(o.policy === undefined ? {} : { policy: o.policy }),
            ...(o.hardware === undefined ? {} : { hardwareId: o.hardware }),
          },
        );
        if (o.out !== undefined) {
          const { writeFileSync } = await import('node:fs');
          writeFileSync(o.out, target.bytes);
        }
        const cp = parseCheckpoint(parseNote(target.checkpoint).text);
        const t = client.trusted;
        const info = {
          ok: true,
          name,
          role: target.role,
          version: target.info.custom.version,
          length: target.bytes.length,
          sha256: target.info.hashes.sha256,
          rootVersion: t.root.version,
          targetsVersion: t.targets?.version,
          logIndex: target.info.custom.log.index,
          checkpointSize: cp.size,
          inclusionProofHashes: target.inclusionProof.length,
          cosigners: target.cosigners,
        };
        out(
          o.json,
          info,
          [
            `ok: ${name} v${info.version} (${info.length} bytes, sha256 ${info.sha256.slice(0, 16)}…), signed by role ${info.role}`,
            `  TUF: root v${info.rootVersion}, timestamp/snapshot/targets verified (targets v${info.targetsVersion}), composite signatures over threshold`,
            `  log: entry ${info.logIndex} included in checkpoint ${cp.size} (${info.inclusionProofHashes}-hash proof), cosigned by ${info.cosigners.join(', ')}`,
            ...(o.out === undefined ? [] : [`  written to ${o.out}`]),
          ].join('\n'),
        );
      },
    );
  up.command('status')
    .description('role versions and expiry, targets, log size and last witnessed checkpoint')
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--json', 'print JSON')
    .action((o: { repo: string; json?: boolean }) => {
      const dir = resolve(o.repo);
      const read = (role: string): { version: number; expires: string } => {
        try {
          return (
            JSON.parse(readFileSync(join(dir, 'metadata', `${role}.json`), 'utf8')) as {
              signed: { version: number; expires: string };
            }
          ).signed;
        } catch (cause) {
          throw new CliError(
            'CLI_NOT_A_REPO',
            `${dir} has no metadata/${role}.json (run genesis update init)`,
            { cause },
          );
        }
      };
      const roles = Object.fromEntries(REPO_ROLES.map((r) => [r, read(r)]));
      const store = new DirectoryRepoStore(dir);
      const targets = readTargetsRole(store, 'targets').targets;
      const delegated = delegationTree(store).map((e) => ({
        name: e.delegation.name,
        parent: e.parent,
        paths: e.delegation.paths,
        targets: Object.entries(e.signed.targets).map(([k, v]) => `${k} v${v.custom.version}`),
      }));
      const l = DurableLog.open(join(dir, 'log.db'), { readonly: true });
      try {
        const cp = l.latestCheckpointNote();
        const cosigners = cp === undefined ? 0 : parseNote(cp.note).signatures.length - 1;
        const info = {
          roles,
          targets: Object.fromEntries(
            Object.entries(targets).map(([k, v]) => [
              k,
              { version: v.custom.version, length: v.length, logIndex: v.custom.log.index },
            ]),
          ),
          delegated,
          logSize: l.size,
          checkpointSize: cp?.size,
          cosignatures: cosigners,
        };
        out(
          o.json,
          info,
          [
            ...REPO_ROLES.map(
              (r) => `${r.padEnd(10)} v${roles[r]?.version}  expires ${roles[r]?.expires}`,
            ),
            `targets    ${Object.keys(targets).length}: ${
              Object.entries(targets)
                .map(([k, v]) => `${k} v${v.custom.version}`)
                .join(', ') || '(none)'
            }`,
            ...delegated.map(
              (d) =>
                `  ${d.parent} → ${d.name} [${d.paths.join(' ')}]: ${d.targets.join(', ') || '(none)'}`,
            ),
            `log        ${l.size} entries; last witnessed checkpoint ${cp === undefined ? 'none' : `size ${cp.size} with ${cosigners} cosignatures`}`,
          ].join('\n'),
        );
      } finally {
        l.close();
      }
    });
}

/** Adds the trust layer's commands. */
export function register(program: Command): void {
  registerKeys(program);
  registerLog(program);
  registerUpdate(program);
}
