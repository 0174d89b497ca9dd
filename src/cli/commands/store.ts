/**
 * `genesis store ...`: put, get, stat, repair, pin, unpin and gc against a store rooted in
 * `--data-dir`. Each invocation boots the in-process fabric of the default topology over that
 * data dir (every tile's blockstore and the coordinator catalog live there), so objects
 * persist across invocations. `--down TILE,...` leaves tiles stopped, to see what a dead tile
 * does to stat, get and repair.
 */
import { createReadStream, createWriteStream, readFileSync, renameSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { DEFAULT_TOPOLOGY_SIZE, EmbeddedFabric, generateTopology } from '../../core/index.ts';
import {
  attachStore,
  type ObjectStat,
  type RepairReport,
  rawCid,
  type StoreCluster,
} from '../../store/index.ts';
import { CliError, printJson } from '../util.ts';

interface StoreFlags {
  dataDir: string;
  down?: string;
  json?: boolean;
}

/** Boots the fabric over the data dir, runs `fn` with the store, and stops everything. */
async function withStore<T>(flags: StoreFlags, fn: (c: StoreCluster) => Promise<T>): Promise<T> {
  const topology = generateTopology(DEFAULT_TOPOLOGY_SIZE);
  const down = (flags.down ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const t of down) {
    if (topology.nodes.get(t)?.level !== 'tile')
      throw new CliError(
        'CLI_BAD_TILE',
        `--down: "${t}" is not a tile of the default topology (e.g. eu1.h1.p1.t01)`,
      );
  }
  const fabric = new EmbeddedFabric({ topology, dataDir: resolve(flags.dataDir) });
  const cluster = attachStore(fabric);
  await fabric.start();
  try {
    for (const t of down) await fabric.nodes.get(t)?.stop();
    return await fn(cluster);
  } finally {
    await cluster.close();
    await fabric.stop();
  }
}

function formatStat(st: ObjectStat): string {
  const lines = [
    `cid      ${st.cid}`,
    `kind     ${st.kind}${st.kind === 'manifest' ? ` (${st.stripes.length - 1} chunks)` : ''}`,
    `size     ${st.size} bytes`,
    `profile  ${st.profile}${st.pinned ? '  pinned' : ''}`,
    `health   ${st.stripes.length - st.degraded}/${st.stripes.length} stripes whole, ${st.degraded} degraded, ${st.unreadable} unreadable`,
  ];
  for (const s of st.stripes) {
    lines.push(`stripe ${s.block}  ${s.k}+${s.m}  ${s.healthy}/${s.k + s.m} healthy`);
    for (const sh of s.shards)
      lines.push(`  #${String(sh.index).padEnd(3)} ${sh.tile.padEnd(16)} ${sh.health}`);
  }
  return `${lines.join('\n')}\n`;
}

function formatRepair(r: RepairReport): string {
  const lines = [
    `${r.dryRun ? 'dry run: ' : ''}${r.members} member tiles${r.markedOut.length > 0 ? `, marked out: ${r.markedOut.join(', ')}` : ''}${r.markedIn.length > 0 ? `, back in: ${r.markedIn.join(', ')}` : ''}`,
    `stripes  ${r.stripesScanned} scanned, ${r.stripesHealthy} healthy`,
    `shards   ${r.shardsNeeded} ${r.dryRun ? 'to rebuild' : 'needed'}, ${r.corruptFound} corrupt, ${r.shardsRepaired} rebuilt (${r.bytesRepaired} bytes), ${r.orphansRemoved} stale copies removed`,
  ];
  for (const u of r.unrecoverable)
    lines.push(
      `UNRECOVERABLE ${u.block}: ${u.healthy} healthy of needed ${u.k}; missing shards ${u.missing.join(',')}`,
    );
  return `${lines.join('\n')}\n`;
}

/** Adds `genesis store` and its subcommands. */
export function register(program: Command): void {
  const store = program
    .command('store')
    .description('content-addressed, erasure-coded object store (see docs/store.md)')
    .option('--data-dir <dir>', 'data directory (shared with genesis up)', './.genesis')
    .option('--down <tiles>', 'comma-separated tiles to leave stopped (simulates dead tiles)')
    .option('--json', 'print JSON');
  const flags = (cmd: Command): StoreFlags => cmd.optsWithGlobals() as StoreFlags;

  store
    .command('put <file>')
    .description('store FILE (or - for stdin); prints its CID')
    .option('--profile <name>', 'profile: pod-4+2, hub-10+4, or K+M[@pod|hub|region|global]')
    .option('--no-pin', 'do not pin (the next gc removes it)')
    .action(async (file: string, o: { profile?: string; pin: boolean }, cmd: Command) => {
      const f = flags(cmd);
      const source = file === '-' ? process.stdin : createReadStream(file);
      await new Promise<void>((ok, fail) => {
        if (file === '-') return ok();
        source.once('open', () => ok());
        source.once('error', (e: NodeJS.ErrnoException) =>
          fail(
            new CliError('CLI_FILE_UNREADABLE', `cannot read ${file}: ${e.code ?? e.message}`, {
              cause: e,
            }),
          ),
        );
      });
      const r = await withStore(f, (c) =>
        c.store.put(source, {
          pin: o.pin,
          ...(o.profile === undefined ? {} : { profile: o.profile }),
        }),
      );
      if (f.json === true) printJson(r);
      else process.stdout.write(`${r.cid}\n`);
    });

  store
    .command('get <cid>')
    .description('write an object to stdout or to -o FILE (bytes are verified against the CID)')
    .option('-o, --output <file>', 'output file (written to a temp file, renamed when complete)')
    .action(async (cid: string, o: { output?: string }, cmd: Command) => {
      await withStore(flags(cmd), async (c) => {
        if (o.output === undefined) {
          for await (const chunk of c.store.get(cid)) {
            if (!process.stdout.write(chunk))
              await new Promise((r) => process.stdout.once('drain', r));
          }
          return;
        }
        const tmp = `${o.output}.partial`;
        try {
          await pipeline(c.store.get(cid), createWriteStream(tmp));
          renameSync(tmp, o.output);
        } catch (e) {
          rmSync(tmp, { force: true });
          throw e;
        }
      });
    });

  store
    .command('stat <cid>')
    .description('where each shard of an object lives and its health')
    .action(async (cid: string, _o: unknown, cmd: Command) => {
      const f = flags(cmd);
      const st = await withStore(f, (c) => c.store.stat(cid));
      if (f.json === true) printJson(st);
      else process.stdout.write(formatStat(st));
    });

  store
    .command('cid <file>')
    .description(
      "print a file's raw CID (sha2-256), the name a workload's `module` uses for a kernel module",
    )
    .action((file: string, _o: unknown, cmd: Command) => {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(resolve(file));
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw new CliError(
          'CLI_FILE_UNREADABLE',
          `cannot read ${file}: ${err.code ?? err.message}`,
          {
            cause: e,
          },
        );
      }
      const cid = rawCid(bytes).toString();
      if (flags(cmd).json === true) printJson({ file, bytes: bytes.length, cid });
      else process.stdout.write(`${cid}\n`);
    });

  store
    .command('repair')
    .description('mark dead tiles out, rebuild missing and corrupt shards onto healthy tiles')
    .option('--dry-run', 'report what would be rebuilt, change nothing')
    .option('--quick', 'skip re-hashing every shard (no bit-rot scrub); only fix missing shards')
    .action(async (o: { dryRun?: boolean; quick?: boolean }, cmd: Command) => {
      const f = flags(cmd);
      const r = await withStore(f, (c) =>
        c.repair({ dryRun: o.dryRun === true, scrub: o.quick !== true }),
      );
      if (f.json === true) printJson(r);
      else process.stdout.write(formatRepair(r));
      if (r.unrecoverable.length > 0) process.exitCode = 1;
    });

  store
    .command('pin <cid>')
    .description('pin an object (fails if any block of it cannot be read)')
    .action(async (cid: string, _o: unknown, cmd: Command) => {
      const f = flags(cmd);
      const p = await withStore(f, (c) => c.store.pin(cid));
      if (f.json === true) printJson(p);
      else process.stdout.write(`pinned ${p.cid} (${p.size} bytes, ${p.profile})\n`);
    });

  store
    .command('unpin <cid>')
    .description('unpin an object (its blocks go at the next gc)')
    .action(async (cid: string, _o: unknown, cmd: Command) => {
      const f = flags(cmd);
      const removed = await withStore(f, async (c) => c.store.unpin(cid));
      if (!removed) throw new CliError('CLI_NOT_PINNED', `${cid} is not pinned`);
      if (f.json === true) printJson({ cid, unpinned: true });
      else process.stdout.write(`unpinned ${cid}\n`);
    });

  store
    .command('gc')
    .description('remove every block no pin reaches')
    .action(async (_o: unknown, cmd: Command) => {
      const f = flags(cmd);
      const r = await withStore(f, (c) => c.store.gc());
      if (f.json === true) printJson(r);
      else
        process.stdout.write(
          `removed ${r.blocksRemoved} blocks (${r.shardsRemoved} shards, ${r.bytesFreed} bytes)${r.tilesSkipped.length > 0 ? `; skipped unreachable ${r.tilesSkipped.join(', ')}` : ''}\n`,
        );
    });
}
