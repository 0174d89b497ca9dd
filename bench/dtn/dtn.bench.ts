/**
 * DTN benchmarks (issue 7). Each case measures its baseline in the same run:
 * - decode+validate of 50-byte-payload bundles vs cborg's generic decode of the same bytes;
 * - encode vs cborg's encode of the same structure;
 * - TCPCLv4 over loopback with 1 MiB bundles vs a raw TCP socket copying the same bytes;
 * - contact-graph route computation on HDTN's 10-node plan (µs per route).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { decode as cborgDecode, encode as cborgEncode } from 'cborg';
import {
  CrcType,
  cgrDijkstra,
  createBundle,
  decodeBundle,
  encodeBundle,
  ipn,
  parseContactPlan,
  TcpclServer,
  tcpclConnect,
} from '../../src/dtn/index.ts';
import { type BenchCase, bestOf, row } from '../harness.ts';

const BATCH = 2_000;

function sampleBundles(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) =>
    encodeBundle(
      createBundle({
        source: ipn(1 + (i % 7), 1),
        destination: ipn(100 + (i % 5), 2),
        payload: new Uint8Array(50).fill(i & 0xff),
        creationTime: 800_000_000_000 + i,
        sequence: i,
        lifetimeMs: 3_600_000,
        crcType: CrcType.Crc32c,
        hopLimit: 32,
      }),
    ),
  );
}

/** Bundles per second from the best of several timed batches. */
async function rate(fn: () => void, perBatch: number): Promise<number> {
  for (let i = 0; i < 20; i++) fn();
  const ms = await bestOf(30, fn);
  return (perBatch / ms) * 1000;
}

const MIB = 1024 * 1024;
const TRANSFER_BUNDLES = 48;

async function tcpclGbps(payload: Uint8Array): Promise<number> {
  let received = 0;
  let done: () => void = () => undefined;
  const server = new TcpclServer({
    nodeId: 'ipn:2.0',
    onBundle: (b) => {
      received += b.length;
      if (received >= TRANSFER_BUNDLES * payload.length) done();
    },
  });
  const port = await server.listen(0);
  const s = await tcpclConnect('127.0.0.1', port, { nodeId: 'ipn:1.0' });
  const ms = await bestOf(3, async () => {
    received = 0;
    const all = new Promise<void>((r) => {
      done = r;
    });
    // Keep a window of transfers in flight, as a convergence layer would.
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < TRANSFER_BUNDLES; i++) {
      inflight.push(s.send(payload));
      if (inflight.length >= 8) await inflight.shift();
    }
    await Promise.all(inflight);
    await all;
  });
  s.terminate(0);
  await server.close();
  return (TRANSFER_BUNDLES * payload.length * 8) / (ms / 1000) / 1e9;
}

async function rawGbps(payload: Uint8Array): Promise<number> {
  let received = 0;
  let done: () => void = () => undefined;
  const total = TRANSFER_BUNDLES * payload.length;
  const server = createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= total) done();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const sock: Socket = tcpConnect({ port, host: '127.0.0.1' });
  await new Promise((r) => sock.once('connect', r));
  const ms = await bestOf(3, async () => {
    received = 0;
    const all = new Promise<void>((r) => {
      done = r;
    });
    for (let i = 0; i < TRANSFER_BUNDLES; i++) {
      if (!sock.write(payload)) await new Promise((r) => sock.once('drain', r));
    }
    await all;
  });
  sock.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return (total * 8) / (ms / 1000) / 1e9;
}

const cases: BenchCase[] = [
  {
    name: 'bundle decode+validate (50-byte payload)',
    async run() {
      const bundles = sampleBundles(BATCH);
      let sink = 0;
      const ours = await rate(() => {
        for (const b of bundles) sink += decodeBundle(b).blocks.length;
      }, BATCH);
      const cborg = await rate(() => {
        for (const b of bundles) sink += (cborgDecode(b) as unknown[]).length;
      }, BATCH);
      if (sink < 0) throw new Error('unreachable');
      return [
        row(
          'dtn decode+validate bundles/s (1 core)',
          ours,
          'bundles/s',
          'cborg decode',
          cborg,
          '>= 500000 bundles/s',
        ),
      ];
    },
  },
  {
    name: 'bundle encode (50-byte payload)',
    async run() {
      const bundles = sampleBundles(BATCH).map((b) => decodeBundle(b));
      // cborg encodes the same structure as plain arrays (definite length, CRC bytes given).
      const plain = sampleBundles(BATCH).map((b) => cborgDecode(b) as unknown[]);
      let sink = 0;
      const ours = await rate(() => {
        for (const b of bundles) sink += encodeBundle(b).length;
      }, BATCH);
      const cborg = await rate(() => {
        for (const p of plain) sink += cborgEncode(p).length;
      }, BATCH);
      if (sink < 0) throw new Error('unreachable');
      return [
        row(
          'dtn encode bundles/s (1 core)',
          ours,
          'bundles/s',
          'cborg encode',
          cborg,
          '>= 500000 bundles/s',
        ),
      ];
    },
  },
  {
    name: 'TCPCLv4 loopback 1 MiB bundles',
    async run() {
      const payload = new Uint8Array(MIB).map((_, i) => i & 0xff);
      const raw = await rawGbps(payload);
      const tcpcl = await tcpclGbps(payload);
      return [
        row(
          'TCPCLv4 loopback throughput, 1 MiB bundles',
          tcpcl,
          'Gbit/s',
          'raw TCP socket copy',
          raw,
          '>= 0.5x raw socket',
        ),
      ];
    },
  },
  {
    name: 'CGR route on the 10-node plan',
    async run() {
      const plan = parseContactPlan(
        readFileSync(new URL('../../../shared/vectors/cgr/10nodes.json', import.meta.url), 'utf8'),
      );
      const nodes = [...new Set(plan.contacts.map((c) => c.source))];
      const pairs = nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => [a, b] as const));
      let found = 0;
      const ms = await bestOf(10, () => {
        for (const [a, b] of pairs) if (cgrDijkstra(plan, a, b, 0) !== undefined) found++;
      });
      const usPerRoute = (ms * 1000) / pairs.length;
      const single = await bestOf(200, () => cgrDijkstra(plan, 20, 40, 0));
      return [
        row(
          'CGR Dijkstra route, 10-node plan (all pairs, mean)',
          usPerRoute,
          'µs/route',
          'route 20->40 (HDTN case)',
          single * 1000,
        ),
        ...(found < 0 ? [] : []),
      ];
    },
  },
];

export default cases;
