/**
 * The trust commands as a user runs them (`genesis keys|log|update`), in child processes:
 * the happy paths, and the refusals a user must see (exit 2, a stable error code) when a key
 * file is world-readable, a proof is about other bytes or was tampered with, a target in the
 * repository was swapped, or a device asks for a target built for other hardware.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/run-cli.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'genesis-trust-cli-'));

describe('genesis keys / log / update', () => {
  it('creates a composite key, shows it, and refuses a private key others can read', async () => {
    const dir = tmp();
    const made = await runCli([
      'keys',
      'new',
      '--name',
      'eu1.h1',
      '--out',
      join(dir, 'k'),
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const info = JSON.parse(made.stdout) as { alg: string; fingerprint: string };
    expect(info.alg).toBe('MLDSA65-Ed25519-SHA512');
    const shown = await runCli(['keys', 'show', join(dir, 'k.key'), '--json']);
    expect(shown.code).toBe(0);
    expect((JSON.parse(shown.stdout) as { fingerprint: string }).fingerprint).toBe(
      info.fingerprint,
    );
    chmodSync(join(dir, 'k.key'), 0o644);
    const refused = await runCli(['keys', 'show', join(dir, 'k.key')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/TRUST_KEY_PERMISSIONS/);
  });

  it('appends to a log, proves inclusion offline, and rejects wrong entries and tampered proofs', async () => {
    const dir = tmp();
    const db = join(dir, 'log.db');
    writeFileSync(join(dir, 'a.txt'), 'hello\n');
    writeFileSync(join(dir, 'b.txt'), 'world\n');
    const app = await runCli([
      'log',
      'append',
      '--db',
      db,
      join(dir, 'a.txt'),
      join(dir, 'b.txt'),
      '--json',
    ]);
    expect(app.code, app.stderr).toBe(0);
    expect((JSON.parse(app.stdout) as { size: number }).size).toBe(2);
    const proof = await runCli(['log', 'proof', '--db', db, '--index', '1', '--json']);
    expect(proof.code, proof.stderr).toBe(0);
    const proofFile = join(dir, 'p.json');
    writeFileSync(proofFile, proof.stdout);
    const ok = await runCli([
      'log',
      'verify',
      '--proof',
      proofFile,
      '--entry',
      join(dir, 'b.txt'),
      '--json',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as { ok: boolean }).ok).toBe(true);
    const wrong = await runCli([
      'log',
      'verify',
      '--proof',
      proofFile,
      '--entry',
      join(dir, 'a.txt'),
    ]);
    expect(wrong.code).toBe(2);
    // Flip the sibling hash: the recomputed root no longer matches.
    const p = JSON.parse(proof.stdout) as { proof: string[] };
    const h = Buffer.from(p.proof[0] as string, 'base64');
    h[0] = (h[0] as number) ^ 1;
    p.proof[0] = h.toString('base64');
    writeFileSync(proofFile, JSON.stringify(p));
    const tampered = await runCli(['log', 'verify', '--proof', proofFile]);
    expect(tampered.code).toBe(2);
    const full = await runCli(['log', 'verify', '--db', db, '--json']);
    expect(full.code, full.stderr).toBe(0);
  });

  it('publishes a TUF target into a witnessed log and verifies it; a swapped target or other hardware is refused', async () => {
    const dir = tmp();
    const repo = join(dir, 'repo');
    const init = await runCli(['update', 'init', '--repo', repo, '--witnesses', '2', '--json']);
    expect(init.code, init.stderr).toBe(0);
    writeFileSync(join(dir, 'fw.bin'), 'firmware v1');
    const pub = await runCli([
      'update',
      'publish',
      join(dir, 'fw.bin'),
      '--repo',
      repo,
      '--hardware',
      'tile-v1',
      '--json',
    ]);
    expect(pub.code, pub.stderr).toBe(0);
    expect((JSON.parse(pub.stdout) as { cosigners: string[] }).cosigners).toHaveLength(2);
    const out = join(dir, 'got.bin');
    const verifyAs = (hardware: string, ...extra: string[]) =>
      runCli(['update', 'verify', 'fw.bin', '--repo', repo, '--hardware', hardware, ...extra]);
    const ver = await verifyAs('tile-v1', '--out', out, '--json');
    expect(ver.code, ver.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('firmware v1');
    const other = await verifyAs('tile-v2');
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/TRUST_TARGET_MISMATCH/);
    // A mirror that swaps the bytes of a signed target is caught by the length/hash check.
    writeFileSync(join(repo, 'targets', 'fw.bin'), 'firmware v1'.replace('1', '9'));
    const swapped = await verifyAs('tile-v1');
    expect(swapped.code).toBe(2);
    const status = await runCli(['update', 'status', '--repo', repo]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/fw\.bin v1/);
  });

  it('delegates a path to a team role that publishes under it, and nothing outside it', async () => {
    const dir = tmp();
    const repo = join(dir, 'repo');
    expect((await runCli(['update', 'init', '--repo', repo, '--witnesses', '1'])).code).toBe(0);
    const del = await runCli([
      'update',
      'delegate',
      '--repo',
      repo,
      '--role',
      'apps',
      '--paths',
      'apps/*',
      '--json',
    ]);
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ name: 'apps', paths: ['apps/*'] });
    writeFileSync(join(dir, 'web.wasm'), 'web');
    const publishAs = (name: string) =>
      runCli([
        'update',
        'publish',
        join(dir, 'web.wasm'),
        '--repo',
        repo,
        '--role',
        'apps',
        '--name',
        name,
      ]);
    const pub = await publishAs('apps/web.wasm');
    expect(pub.code, pub.stderr).toBe(0);
    const ver = await runCli(['update', 'verify', 'apps/web.wasm', '--repo', repo, '--json']);
    expect(ver.code, ver.stderr).toBe(0);
    expect((JSON.parse(ver.stdout) as { role: string }).role).toBe('apps');
    const outside = await publishAs('fw.bin');
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/outside role apps/);
  });
});
