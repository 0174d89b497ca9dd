import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { bytesOf } from './support/fabric.ts';

const dir = mkdtempSync(join(tmpdir(), 'genesis-store-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI in-process; returns exit code, stdout and stderr. */
async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    const code = await main(['store', ...args, '--data-dir', join(dir, 'data')]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = undefined;
  }
}

describe('genesis store CLI', () => {
  it('put, stat with a dead tile, get, repair, stat, unpin, gc — persisting across invocations', async () => {
    const file = join(dir, 'in.bin');
    const data = bytesOf(2 * 1024 * 1024 + 999, 77);
    writeFileSync(file, data);
    const put = await run('put', file, '--profile', 'hub-10+4', '--json');
    expect(put.code).toBe(0);
    const { cid, size } = JSON.parse(put.out) as { cid: string; size: number };
    expect(size).toBe(data.length);

    const st0 = JSON.parse((await run('stat', cid, '--json')).out) as {
      stripes: { shards: { tile: string; health: string }[] }[];
    };
    const dead = st0.stripes[0]?.shards[0]?.tile as string;
    const st1 = await run('stat', cid, '--down', dead);
    expect(st1.out).toMatch(new RegExp(`${dead.replaceAll('.', '\\.')}\\s+unreachable`));
    expect(st1.out).toContain('degraded');

    const outFile = join(dir, 'out.bin');
    expect((await run('get', cid, '--down', dead, '-o', outFile)).code).toBe(0);
    expect(Buffer.compare(readFileSync(outFile), Buffer.from(data))).toBe(0);

    const rep = JSON.parse((await run('repair', '--down', dead, '--json')).out) as {
      markedOut: string[];
      shardsRepaired: number;
      unrecoverable: unknown[];
    };
    expect(rep.markedOut).toEqual([dead]);
    expect(rep.shardsRepaired).toBeGreaterThan(0);
    expect(rep.unrecoverable).toEqual([]);
    const st2 = JSON.parse((await run('stat', cid, '--down', dead, '--json')).out) as {
      degraded: number;
      stripes: { shards: { tile: string }[] }[];
    };
    expect(st2.degraded).toBe(0);
    expect(st2.stripes.flatMap((s) => s.shards.map((x) => x.tile))).not.toContain(dead);

    expect((await run('unpin', cid)).code).toBe(0);
    const gc = JSON.parse((await run('gc', '--json')).out) as { blocksRemoved: number };
    expect(gc.blocksRemoved).toBe(4);
    expect((await run('get', cid, '-o', outFile)).code).toBe(2);
  });

  it('bad input is one clear line and exit code 2', async () => {
    const badCid = await run('stat', 'not-a-cid');
    expect(badCid.code).toBe(2);
    expect(badCid.err).toContain('STORE_BAD_CID');
    const missing = await run('put', join(dir, 'nope.bin'));
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('cannot read');
    const profile = await run('put', join(dir, 'in.bin'), '--profile', 'bogus');
    expect(profile.code).toBe(2);
    expect(profile.err).toContain('STORE_BAD_PROFILE');
    const tile = await run(
      'stat',
      'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e',
      '--down',
      'mars.t1',
    );
    expect(tile.code).toBe(2);
    expect(tile.err).toContain('not a tile');
  });
});
