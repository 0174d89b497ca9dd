/**
 * Serving a log over HTTP in the C2SP tlog-tiles layout (c2sp.org/tlog-tiles):
 *
 *   GET /checkpoint                      the newest witnessed checkpoint (signed note)
 *   GET /tile/<L>/<N>[.p/<W>]            hashes of tree level 8·L, nodes 256·N … 256·N+W−1
 *   GET /tile/entries/<N>[.p/<W>]        entries 256·N …, each as uint16 big-endian length ‖ data
 *
 * <N> is written in 3-digit groups, all but the last prefixed with "x" (1234067 → x001/x234/067).
 * Full tiles never change and are served as immutable; partial tiles (.p/W, 1 ≤ W ≤ 255) exist
 * for any width the log covers. Entries larger than 65535 bytes cannot be bundled (the length
 * prefix is 16 bits) and their bundle is refused with 500.
 */
import { createServer, type Server } from 'node:http';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';
import type { DurableLog } from './log.ts';

/** Hashes (or entries) per full tile. */
export const TILE_WIDTH = 256;
/** Bytes of one hash in a tile. */
export const TILE_HASH_BYTES = 32;
/** Largest entry an entry bundle can carry. */
export const TILE_ENTRY_BYTES_MAX = 0xffff;

/** A response to a tile request. */
export interface TileResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

const text = (status: number, s: string): TileResponse => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8' },
  body: new TextEncoder().encode(s),
});

/** Encodes a tile index as path elements (tlog-tiles §"Merkle Tree"). */
export function tileIndexPath(n: number): string {
  const groups: string[] = [];
  let rest = n;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** Parses `<N>[.p/<W>]` path elements; undefined when malformed. */
export function parseTileIndex(
  parts: readonly string[],
): { index: number; width: number } | undefined {
  let width = TILE_WIDTH;
  let ps = [...parts];
  const pIdx = ps.indexOf('');
  if (pIdx >= 0) return undefined;
  const last = ps[ps.length - 1];
  if (ps.length >= 2 && ps[ps.length - 2]?.endsWith('.p')) {
    if (last === undefined || !/^[1-9][0-9]{0,2}$/.test(last) || Number(last) >= TILE_WIDTH)
      return undefined;
    width = Number(last);
    ps = ps.slice(0, -1);
    ps[ps.length - 1] = (ps[ps.length - 1] as string).slice(0, -2);
  }
  if (ps.length === 0 || ps.length > 6) return undefined;
  let index = 0;
  for (const [i, g] of ps.entries()) {
    const want = i < ps.length - 1 ? /^x[0-9]{3}$/ : /^[0-9]{3}$/;
    if (!want.test(g)) return undefined;
    index = index * 1000 + Number(i < ps.length - 1 ? g.slice(1) : g);
  }
  return { index, width };
}

/** Answers one GET path against the log (pure: no sockets, testable directly). */
export function handleTileRequest(log: DurableLog, path: string): TileResponse {
  if (path === '/checkpoint') {
    const c = log.latestCheckpointNote();
    return c === undefined
      ? text(404, 'no checkpoint yet\n')
      : {
          status: 200,
          headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
          body: new TextEncoder().encode(c.note),
        };
  }
  const parts = path.split('/').slice(1);
  if (parts[0] !== 'tile' || parts.length < 3) return text(404, 'not found\n');
  const entries = parts[1] === 'entries';
  if (!entries && !/^(0|[1-9][0-9]?)$/.test(parts[1] ?? '')) return text(400, 'bad tile level\n');
  const level = entries ? 0 : Number(parts[1]);
  if (level > 7) return text(404, 'no such level\n');
  const idx = parseTileIndex(parts.slice(2));
  if (idx === undefined) return text(400, 'bad tile index\n');
  const nodesAtLevel = Math.floor(log.size / TILE_WIDTH ** level);
  const first = idx.index * TILE_WIDTH;
  if (first + idx.width > nodesAtLevel) return text(404, 'tile beyond the tree\n');
  const immutable = idx.width === TILE_WIDTH;
  const headers = {
    'content-type': 'application/octet-stream',
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-store',
  };
  if (entries) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < idx.width; i++) {
      const e = log.entry(first + i);
      if (e.length > TILE_ENTRY_BYTES_MAX)
        return text(500, `entry ${first + i} is too large for an entry bundle\n`);
      chunks.push(Uint8Array.of(e.length >> 8, e.length & 0xff), e);
    }
    return { status: 200, headers, body: Buffer.concat(chunks) };
  }
  const body = new Uint8Array(idx.width * TILE_HASH_BYTES);
  for (let i = 0; i < idx.width; i++)
    body.set(log.perfectHash(8 * level, first + i), i * TILE_HASH_BYTES);
  return { status: 200, headers, body };
}

/** Starts an HTTP server for the log on `host:port`; resolves with the bound port. */
export function serveTiles(
  log: DurableLog,
  port: number,
  host = '127.0.0.1',
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    let r: TileResponse;
    try {
      r = handleTileRequest(log, new URL(req.url ?? '/', 'http://x').pathname);
    } catch (e) {
      r = text(500, `${e instanceof TrustError ? e.code : 'ERROR'}\n`);
    }
    res.writeHead(r.status, { ...r.headers, 'content-length': String(r.body.length) });
    res.end(req.method === 'HEAD' ? undefined : r.body);
  });
  return new Promise((ok, fail) => {
    server.once('error', (e) =>
      fail(
        new TrustError(
          TRUST_ERROR_CODES.exists,
          `cannot listen on ${host}:${port}: ${(e as Error).message}`,
          { cause: e },
        ),
      ),
    );
    server.listen(port, host, () => {
      const a = server.address();
      ok({ server, port: typeof a === 'object' && a !== null ? a.port : port });
    });
  });
}
