/**
 * `genesis dtn`: run a bundle node over TCPCLv4 (`serve`), send and receive bundles (`send`,
 * `recv`), compute contact-graph routes (`route`) and pretty-print a bundle with every rule it
 * breaks (`inspect`).
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CryptoRng, createLogger, SystemClock, silentLogger } from '../../core/index.ts';
import {
  BlockType,
  BpsecPolicy,
  type Bundle,
  BundleAgent,
  BundleError,
  ContactPlanRouter,
  cgrYen,
  createBundle,
  decodeBundle,
  dtnTimeOf,
  type Eid,
  encodeBundle,
  FileBundleStore,
  formatEid,
  inspectBundle,
  loadContactPlan,
  parseEid,
  payloadBlock,
  readBundleAge,
  readHopCount,
  readPreviousNode,
  type SecurityService,
  type SecurityServices,
  StaticRouter,
  TcpclServer,
  type TcpclSession,
  tcpclConnect,
  tcpclLink,
} from '../../dtn/index.ts';
import { CliError, parseDuration, parseIntFlag, printJson } from '../util.ts';

/** Largest file `send` and `inspect` read. */
const DTN_CLI_FILE_BYTES_MAX = 64 * 1024 * 1024;
/** How often `serve` retries a peer it cannot reach, and `recv` polls its inbox. */
const DTN_CLI_RETRY_MS = 1_000;

function eidFlag(text: string, flag: string): Eid {
  try {
    return parseEid(text);
  } catch (e) {
    throw new CliError(
      'CLI_BAD_EID',
      `${flag} "${text}" is not an EID (use ipn:N.S or dtn://node/svc)`,
      { cause: e },
    );
  }
}

function hostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  if (m === null) throw new CliError('CLI_BAD_ADDRESS', `${flag} "${text}" is not HOST:PORT`);
  return { host: m[1] as string, port: parseIntFlag(m[2] as string, flag, 1, 65535) };
}

function readInput(arg: string): Uint8Array {
  if (existsSync(arg)) {
    if (statSync(arg).size > DTN_CLI_FILE_BYTES_MAX)
      throw new CliError('CLI_FILE_TOO_LARGE', `${arg} exceeds ${DTN_CLI_FILE_BYTES_MAX} bytes`);
    const raw = readFileSync(arg);
    const text = raw.toString('latin1').trim();
    return /^([0-9a-fA-F]{2})+$/.test(text)
      ? new Uint8Array(Buffer.from(text, 'hex'))
      : new Uint8Array(raw);
  }
  const hex = arg.replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(hex))
    throw new CliError('CLI_BAD_INPUT', `"${arg.slice(0, 40)}" is neither a file nor hex`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

const BLOCK_NAMES: Record<number, string> = {
  1: 'payload',
  6: 'previous node',
  7: 'bundle age',
  10: 'hop count',
  11: 'BIB',
  12: 'BCB',
};

function describeBundle(b: Bundle): Record<string, unknown> {
  const p = b.primary;
  return {
    primary: {
      version: p.version,
      flags: `0x${p.flags.toString(16)}`,
      crcType: p.crcType,
      destination: formatEid(p.destination),
      source: formatEid(p.source),
      reportTo: formatEid(p.reportTo),
      creationTime: p.creationTime,
      sequence: p.sequence,
      lifetimeMs: p.lifetimeMs,
      ...(p.fragmentOffset === undefined
        ? {}
        : { fragmentOffset: p.fragmentOffset, totalAduLength: p.totalAduLength }),
    },
    blocks: b.blocks.map((blk) => {
      let value: unknown;
      try {
        if (blk.type === BlockType.PreviousNode) value = formatEid(readPreviousNode(blk));
        else if (blk.type === BlockType.BundleAge) value = `${readBundleAge(blk)} ms`;
        else if (blk.type === BlockType.HopCount) value = readHopCount(blk);
        else if (blk.type === BlockType.Payload)
          value =
            Buffer.from(blk.data.subarray(0, 32)).toString('hex') +
            (blk.data.length > 32 ? '…' : '');
      } catch (e) {
        value = `unreadable: ${e instanceof BundleError ? e.rule : String(e)}`;
      }
      return {
        type: blk.type,
        name: BLOCK_NAMES[blk.type] ?? 'unknown',
        number: blk.number,
        flags: `0x${blk.flags.toString(16)}`,
        crcType: blk.crcType,
        bytes: blk.data.length,
        ...(value === undefined ? {} : { value }),
      };
    }),
  };
}

function registerInspect(dtn: Command): void {
  dtn
    .command('inspect <hexOrFile>')
    .description('pretty-print a bundle and every RFC 9171 rule it breaks (exit 1 if any)')
    .option('--json', 'print JSON')
    .action((arg: string, o: { json?: boolean }) => {
      const bytes = readInput(arg);
      const { bundle, problems } = inspectBundle(bytes);
      const out = {
        bytes: bytes.length,
        valid: problems.length === 0,
        ...(bundle === undefined ? {} : describeBundle(bundle)),
        problems,
      };
      if (o.json === true) printJson(out);
      else {
        process.stdout.write(
          `bundle: ${bytes.length} bytes, ${problems.length === 0 ? 'valid (strict RFC 9171)' : `${problems.length} problem(s)`}\n`,
        );
        if (bundle !== undefined) {
          const d = describeBundle(bundle);
          for (const [k, v] of Object.entries(d.primary as Record<string, unknown>))
            process.stdout.write(
              `  ${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`,
            );
          for (const blk of d.blocks as Record<string, unknown>[])
            process.stdout.write(
              `  block ${blk.number}: ${blk.name} (type ${blk.type}) flags ${blk.flags} crc ${blk.crcType} ${blk.bytes} bytes${blk.value === undefined ? '' : ` = ${JSON.stringify(blk.value)}`}\n`,
            );
        }
        for (const p of problems)
          process.stdout.write(`  problem: ${p.rule} at byte ${p.offset}: ${p.message}\n`);
      }
      if (problems.length > 0) process.exitCode = 1;
    });
}

function registerRoute(dtn: Command): void {
  dtn
    .command('route')
    .description('contact-graph routes between two nodes of a contact plan (HDTN JSON format)')
    .requiredOption('--plan <file>', 'contact plan file')
    .requiredOption('--from <node>', 'source node number')
    .requiredOption('--to <node>', 'destination node number')
    .option('--at <sec>', 'start time, seconds of the plan', '0')
    .option('--k <n>', 'number of routes (Yen)', '1')
    .option('--json', 'print JSON')
    .action(
      (o: { plan: string; from: string; to: string; at: string; k: string; json?: boolean }) => {
        const plan = loadContactPlan(o.plan);
        const from = parseIntFlag(o.from, '--from');
        const to = parseIntFlag(o.to, '--to');
        const at = Number(o.at);
        if (!Number.isFinite(at) || at < 0)
          throw new CliError(
            'CLI_BAD_NUMBER',
            `--at must be a non-negative number of seconds, got "${o.at}"`,
          );
        const t0 = performance.now();
        const routes = cgrYen(plan, from, to, at, parseIntFlag(o.k, '--k', 1, 32));
        const us = (performance.now() - t0) * 1000;
        const out = routes.map((r) => ({
          nextHop: r.nextHop,
          arrivalSec: r.arrivalSec,
          hops: r.contacts.length,
          contacts: r.contacts.map((c) => ({
            contact: c.id,
            planIndex: c.index,
            source: c.source,
            dest: c.dest,
            startTime: c.startSec,
            endTime: c.endSec,
            owlt: c.owltSec,
          })),
        }));
        if (o.json === true) printJson({ from, to, at, routes: out, computeUs: Math.round(us) });
        else if (routes.length === 0)
          process.stdout.write(`no route from ${from} to ${to} at t=${at}s\n`);
        else
          out.forEach((r, i) => {
            process.stdout.write(
              `route ${i + 1}: next hop ${r.nextHop}, arrival ${r.arrivalSec}s, ${r.hops} contact(s): ${r.contacts.map((c) => `#${c.contact} ${c.source}->${c.dest} [${c.startTime},${c.endTime})`).join(', ')}\n`,
            );
          });
        if (routes.length === 0) process.exitCode = 1;
      },
    );
}

/**
 * Reads a BPSec key file: `{"ipn:2.0": {"integrity": "<hex>", "confidentiality": "<hex>"}}`,
 * keys shared pairwise with each peer node (HMAC keys of 16–64 bytes; AES-GCM keys of 16 or 32).
 */
function loadSecurityKeys(
  path: string,
): (peer: string, service: SecurityService) => Uint8Array | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError('CLI_BAD_KEYS', `cannot read key file ${path}: ${(e as Error).message}`);
  }
  const table = new Map<string, Uint8Array>();
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new CliError('CLI_BAD_KEYS', `${path}: expected {"ipn:N.0": {"integrity": hex, ...}}`);
  for (const [node, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null)
      throw new CliError('CLI_BAD_KEYS', `${path}: ${node} must map services to hex keys`);
    for (const [service, hex] of Object.entries(entry as Record<string, unknown>)) {
      if (service !== 'integrity' && service !== 'confidentiality')
        throw new CliError(
          'CLI_BAD_KEYS',
          `${path}: ${node}.${service} is not integrity or confidentiality`,
        );
      const ok = typeof hex === 'string' && /^([0-9a-fA-F]{2})+$/.test(hex);
      const key = ok ? new Uint8Array(Buffer.from(hex, 'hex')) : new Uint8Array();
      const sizes =
        service === 'integrity'
          ? key.length >= 16 && key.length <= 64
          : key.length === 16 || key.length === 32;
      if (!ok || !sizes)
        throw new CliError(
          'CLI_BAD_KEYS',
          `${path}: ${node}.${service} must be hex, ${service === 'integrity' ? '16–64' : '16 or 32'} bytes`,
        );
      table.set(`${node}|${service}`, key);
    }
  }
  return (peer, service) => table.get(`${peer}|${service}`);
}

function servicesFlag(text: string | undefined, flag: string): SecurityServices {
  const list = (text ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
  for (const x of list)
    if (x !== 'integrity' && x !== 'confidentiality')
      throw new CliError(
        'CLI_BAD_FLAG',
        `${flag} takes integrity and/or confidentiality, got "${x}"`,
      );
  return {
    integrity: list.includes('integrity'),
    confidentiality: list.includes('confidentiality'),
  };
}

function inboxDir(dataDir: string, eid: Eid): string {
  return join(dataDir, 'inbox', formatEid(eid).replace(/[^a-zA-Z0-9.-]/g, '_'));
}

interface ServeFlags {
  tcpcl: string;
  host: string;
  contactPlan?: string;
  node: string;
  endpoint: string[];
  peer: string[];
  dataDir: string;
  for?: string;
  json?: boolean;
  verbose?: boolean;
  keys?: string;
  require?: string;
}

async function serve(o: ServeFlags): Promise<void> {
  const nodeId = eidFlag(o.node, '--node');
  if (nodeId.scheme !== 'ipn' || nodeId.service !== 0)
    throw new CliError('CLI_BAD_EID', '--node must be an ipn node ID ipn:N.0');
  const port = parseIntFlag(o.tcpcl, '--tcpcl', 0, 65535);
  const dataDir = resolve(o.dataDir);
  const clock = new SystemClock();
  const logger = o.verbose === true ? createLogger({ level: 'debug' }) : silentLogger();
  const peers = o.peer.map((p) => hostPort(p, '--peer'));
  const router =
    o.contactPlan !== undefined
      ? new ContactPlanRouter(loadContactPlan(o.contactPlan), nodeId.node, clock.now())
      : new StaticRouter(new Map(), undefined);
  const required = servicesFlag(o.require, '--require');
  if ((required.integrity === true || required.confidentiality === true) && o.keys === undefined)
    throw new CliError('CLI_BAD_FLAG', '--require needs --keys (the keys shared with senders)');
  const security =
    o.keys === undefined
      ? undefined
      : new BpsecPolicy({ key: loadSecurityKeys(o.keys), require: required, rng: new CryptoRng() });
  const agent = new BundleAgent({
    nodeId,
    clock,
    logger,
    store: new FileBundleStore(join(dataDir, 'bundles')),
    router,
    ...(security === undefined ? {} : { security }),
  });
  const endpoints = (o.endpoint.length > 0 ? o.endpoint : [`ipn:${nodeId.node}.1`]).map((e) =>
    eidFlag(e, '--endpoint'),
  );
  let seq = 0;
  for (const ep of endpoints) {
    const dir = inboxDir(dataDir, ep);
    mkdirSync(dir, { recursive: true });
    agent.register(ep, (d) => {
      // Write-then-rename so `recv` never sees a partial file.
      const name = `${Date.now()}-${process.pid}-${seq++}.bundle`;
      writeFileSync(join(dir, `${name}.tmp`), encodeBundle(d.bundle));
      renameSync(join(dir, `${name}.tmp`), join(dir, name));
      if (o.json === true)
        printJson({
          event: 'delivered',
          id: d.id,
          endpoint: formatEid(ep),
          bytes: d.payload.length,
        });
    });
  }
  const nodeKey = formatEid(nodeId);
  const onSession = (s: TcpclSession): void => {
    const link = tcpclLink(s);
    agent.addLink(link);
    s.once('closed', () => agent.removeLink(link.peer));
  };
  const server = new TcpclServer({
    nodeId: nodeKey,
    clock,
    logger,
    onBundle: (b) => agent.receive(b),
    onSession,
  });
  const bound = await server.listen(port, o.host);
  agent.start();
  const timers: NodeJS.Timeout[] = [];
  for (const p of peers) {
    let connecting = false;
    let session: TcpclSession | undefined;
    const dial = (): void => {
      if (connecting || (session !== undefined && session.state === 'established')) return;
      connecting = true;
      tcpclConnect(p.host, p.port, {
        nodeId: nodeKey,
        clock,
        logger,
        onBundle: (b) => agent.receive(b),
      })
        .then((s) => {
          session = s;
          const link = tcpclLink(s);
          agent.addLink(link);
          // One peer and no plan: it is the default route for everything not local.
          if (peers.length === 1 && o.contactPlan === undefined)
            agent.setRouter(new StaticRouter(new Map(), link.peer));
          s.once('closed', () => agent.removeLink(link.peer));
          if (o.json === true) printJson({ event: 'peer', peer: s.peerNodeId });
        })
        .catch((e: unknown) => logger.debug({ err: String(e) }, 'peer unreachable; retrying'))
        .finally(() => {
          connecting = false;
        });
    };
    dial();
    timers.push(setInterval(dial, DTN_CLI_RETRY_MS));
  }
  if (o.json === true)
    printJson({ event: 'listening', node: nodeKey, port: bound, held: agent.held });
  process.stderr.write(
    `genesis dtn: node ${nodeKey} listening on ${o.host}:${bound} (TCPCLv4), ${agent.held} stored bundle(s)\n`,
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (o.for !== undefined) setTimeout(done, parseDuration(o.for)).unref();
  });
  for (const t of timers) clearInterval(t);
  agent.stop();
  await server.close();
  if (o.json === true) printJson({ event: 'stopped', ...agent.stats, held: agent.held });
}

function registerServe(dtn: Command): void {
  const collect = (v: string, acc: string[]): string[] => [...acc, v];
  dtn
    .command('serve')
    .description('run a bundle node: TCPCLv4 listener, persistent store, optional contact plan')
    .option('--tcpcl <port>', 'TCPCLv4 port (0: any)', '4556')
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--contact-plan <file>', 'contact plan (HDTN JSON) for contact-graph routing')
    .option('--node <eid>', 'this node ID', 'ipn:1.0')
    .option(
      '--endpoint <eid>',
      'local endpoint to deliver to (repeatable; default ipn:N.1)',
      collect,
      [],
    )
    .option('--peer <host:port>', 'TCPCLv4 peer to keep a session with (repeatable)', collect, [])
    .option('--data-dir <dir>', 'bundle store and inbox directory', './genesis-data/dtn')
    .option('--for <duration>', 'stop after this long')
    .option('--keys <file>', 'BPSec keys shared with peers: {"ipn:N.0": {"integrity": hex, ...}}')
    .option(
      '--require <services>',
      'deliver only bundles whose payload carries these (integrity,confidentiality)',
    )
    .option('--json', 'print JSON events')
    .action((o: ServeFlags, cmd: Command) =>
      serve({ ...o, verbose: cmd.optsWithGlobals().verbose === true }),
    );
}

function registerSend(dtn: Command): void {
  dtn
    .command('send <dest> <file>')
    .description('send a file as one bundle to DEST through a node (TCPCLv4)')
    .option('--via <host:port>', 'node to hand the bundle to', '127.0.0.1:4556')
    .option('--source <eid>', 'source endpoint', 'ipn:99.1')
    .option('--lifetime <duration>', 'bundle lifetime', '1h')
    .option('--keys <file>', 'BPSec keys shared with the destination node (see serve --keys)')
    .option('--protect <services>', 'sign and/or encrypt the payload (integrity,confidentiality)')
    .option('--json', 'print JSON')
    .action(
      async (
        destText: string,
        file: string,
        o: {
          via: string;
          source: string;
          lifetime: string;
          keys?: string;
          protect?: string;
          json?: boolean;
        },
      ) => {
        const destination = eidFlag(destText, 'DEST');
        const source = eidFlag(o.source, '--source');
        if (!existsSync(file)) throw new CliError('CLI_FILE_MISSING', `no file ${file}`);
        if (statSync(file).size > DTN_CLI_FILE_BYTES_MAX)
          throw new CliError(
            'CLI_FILE_TOO_LARGE',
            `${file} exceeds ${DTN_CLI_FILE_BYTES_MAX} bytes`,
          );
        const payload = new Uint8Array(readFileSync(file));
        const via = hostPort(o.via, '--via');
        const bundle = createBundle({
          source,
          destination,
          payload,
          creationTime: dtnTimeOf(Date.now()),
          sequence: 0,
          lifetimeMs: parseDuration(o.lifetime, '--lifetime'),
          hopLimit: 32,
        });
        const protect = servicesFlag(o.protect, '--protect');
        if (
          (protect.integrity === true || protect.confidentiality === true) &&
          o.keys === undefined
        )
          throw new CliError('CLI_BAD_FLAG', '--protect needs --keys');
        let secured = bundle;
        if (o.keys !== undefined) {
          const policy = new BpsecPolicy({
            key: loadSecurityKeys(o.keys),
            protect: () => protect,
            rng: new CryptoRng(),
          });
          try {
            secured = policy.protect(bundle);
          } catch (e) {
            throw new CliError('CLI_BAD_KEYS', (e as Error).message, { cause: e });
          }
        }
        const bytes = encodeBundle(secured);
        const nodeKey = source.scheme === 'ipn' ? `ipn:${source.node}.0` : formatEid(source);
        const session = await tcpclConnect(via.host, via.port, { nodeId: nodeKey });
        try {
          await session.send(bytes);
        } finally {
          session.terminate(0, 'done');
        }
        const id = `${formatEid(source)}/${bundle.primary.creationTime}/0`;
        if (o.json === true)
          printJson({ id, bytes: bytes.length, via: o.via, peer: session.peerNodeId });
        else
          process.stdout.write(
            `sent ${id} (${bytes.length} bytes) to ${session.peerNodeId} at ${o.via}\n`,
          );
      },
    );
}

function registerRecv(dtn: Command): void {
  dtn
    .command('recv <endpoint>')
    .description('take the next bundle delivered to ENDPOINT by a local `genesis dtn serve`')
    .option('--data-dir <dir>', 'the serve process data dir', './genesis-data/dtn')
    .option('--wait <duration>', 'how long to wait for a bundle', '30s')
    .option('--out <file>', 'write the payload here instead of stdout')
    .option('--json', 'print JSON (payload as hex)')
    .action(
      async (
        epText: string,
        o: { dataDir: string; wait: string; out?: string; json?: boolean },
      ) => {
        const ep = eidFlag(epText, 'ENDPOINT');
        const dir = inboxDir(resolve(o.dataDir), ep);
        const deadline = Date.now() + parseDuration(o.wait, '--wait');
        for (;;) {
          const files = existsSync(dir)
            ? readdirSync(dir)
                .filter((f) => f.endsWith('.bundle'))
                .sort()
            : [];
          const first = files[0];
          if (first !== undefined) {
            const path = join(dir, first);
            const bundle = decodeBundle(new Uint8Array(readFileSync(path)), { lenient: true });
            rmSync(path);
            const payload = payloadBlock(bundle).data;
            if (o.out !== undefined) writeFileSync(o.out, payload);
            if (o.json === true)
              printJson({
                source: formatEid(bundle.primary.source),
                destination: formatEid(bundle.primary.destination),
                bytes: payload.length,
                ...(o.out === undefined
                  ? { payloadHex: Buffer.from(payload).toString('hex') }
                  : { out: o.out }),
              });
            else if (o.out === undefined) process.stdout.write(payload);
            return;
          }
          if (Date.now() >= deadline)
            throw new CliError(
              'CLI_DTN_NOTHING',
              `no bundle for ${formatEid(ep)} in ${dir} within ${o.wait}`,
            );
          await new Promise((r) => setTimeout(r, DTN_CLI_RETRY_MS / 4));
        }
      },
    );
}

/** Adds `genesis dtn ...`. */
export function register(program: Command): void {
  const dtn = program
    .command('dtn')
    .description('delay-tolerant networking: BPv7 bundles, TCPCLv4, contact-graph routing');
  registerServe(dtn);
  registerSend(dtn);
  registerRecv(dtn);
  registerRoute(dtn);
  registerInspect(dtn);
}
