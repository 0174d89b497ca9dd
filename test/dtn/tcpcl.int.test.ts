import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MsgType,
  SessTermReason,
  TcpclError,
  TcpclServer,
  type TcpclSession,
  tcpclConnect,
  XferRefuseReason,
} from '../../src/dtn/index.ts';

const servers: TcpclServer[] = [];
const sessions: TcpclSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) s.terminate(0);
  for (const s of servers.splice(0)) await s.close();
});

async function server(opts: Partial<ConstructorParameters<typeof TcpclServer>[0]> = {}) {
  const got: Uint8Array[] = [];
  const srv = new TcpclServer({
    nodeId: 'ipn:2.0',
    keepaliveS: 30,
    onBundle: (b) => got.push(b),
    ...opts,
  });
  servers.push(srv);
  const port = await srv.listen(0);
  return { srv, port, got };
}

const contact = (version = 4, flags = 0): Buffer =>
  Buffer.from([0x64, 0x74, 0x6e, 0x21, version, flags]);
function sessInit(nodeId = 'ipn:9.0', segMru = 1 << 20, nodeIdLenOverride?: number): Buffer {
  const id = Buffer.from(nodeId);
  const m = Buffer.alloc(1 + 2 + 8 + 8 + 2 + id.length + 4);
  m[0] = MsgType.SessInit;
  m.writeUInt16BE(0, 1);
  m.writeBigUInt64BE(BigInt(segMru), 3);
  m.writeBigUInt64BE(1n << 30n, 11);
  m.writeUInt16BE(nodeIdLenOverride ?? id.length, 19);
  id.copy(m, 21);
  return m;
}
function segment(flags: number, id: bigint, data: Buffer, lengthOverride?: bigint): Buffer {
  const start = (flags & 2) !== 0;
  const h = Buffer.alloc(start ? 22 : 18);
  h[0] = MsgType.XferSegment;
  h[1] = flags;
  h.writeBigUInt64BE(id, 2);
  let o = 10;
  if (start) {
    h.writeUInt32BE(0, o);
    o += 4;
  }
  h.writeBigUInt64BE(lengthOverride ?? BigInt(data.length), o);
  return Buffer.concat([h, data]);
}

/** A raw TCP client that records everything the server sends until it closes. */
async function raw(
  port: number,
): Promise<{ sock: Socket; received: () => Buffer; closed: Promise<void> }> {
  const sock = connect({ port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  sock.on('error', () => undefined);
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await new Promise((r) => sock.once('connect', r));
  return { sock, received: () => Buffer.concat(chunks), closed };
}

/** Finds the SESS_TERM reason in what the server sent after its contact header. */
function sessTermReason(bytes: Buffer, skip: number): number | undefined {
  const i = bytes.indexOf(Buffer.from([MsgType.SessTerm, 0x00]), skip);
  return i < 0 ? undefined : bytes[i + 2];
}

describe('TCPCLv4 sessions', () => {
  it('negotiates and exchanges bundles both ways, splitting 1 MiB into segments', async () => {
    const { port, got } = await server({ segmentMruBytes: 64 * 1024 });
    const back: Uint8Array[] = [];
    const c = await tcpclConnect('127.0.0.1', port, {
      nodeId: 'ipn:1.0',
      keepaliveS: 10,
      onBundle: (b) => back.push(b),
    });
    sessions.push(c);
    expect(c.peerNodeId).toBe('ipn:2.0');
    expect(c.keepaliveS).toBe(10);
    expect(c.peerSegmentMru).toBe(64 * 1024);
    const big = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff);
    await c.send(big);
    await c.send(new Uint8Array([1, 2, 3]));
    expect(got).toHaveLength(2);
    expect(Buffer.from(got[0] as Uint8Array).equals(Buffer.from(big))).toBe(true);
    const srvSession = [...servers[0]!.sessions][0] as TcpclSession;
    expect(srvSession.peerNodeId).toBe('ipn:1.0');
    await srvSession.send(new Uint8Array([9]));
    expect(back.map((b) => [...b])).toEqual([[9]]);
  });

  it('runs over TLS when both sides are configured, and refuses plain peers when TLS is required', async () => {
    const tls = {
      key: readFileSync(new URL('./fixtures/tls-key.pem', import.meta.url)),
      cert: readFileSync(new URL('./fixtures/tls-cert.pem', import.meta.url)),
    };
    const { port, got } = await server({ tls, requireTls: true });
    const c = await tcpclConnect('127.0.0.1', port, { nodeId: 'ipn:1.0', tls: { ca: tls.cert } });
    sessions.push(c);
    expect(c.secure).toBe(true);
    await c.send(new Uint8Array([4, 2]));
    expect(got.map((b) => [...b])).toEqual([[4, 2]]);
    const err = await tcpclConnect('127.0.0.1', port, { nodeId: 'ipn:3.0' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TcpclError);
    expect((err as TcpclError).reason).toBe(SessTermReason.ContactFailure);
  });

  it('refuses a bundle larger than the peer transfer MRU locally, and the receiver refuses an oversized transfer', async () => {
    const { port } = await server({ transferMruBytes: 1000, segmentMruBytes: 600 });
    const c = await tcpclConnect('127.0.0.1', port, { nodeId: 'ipn:1.0' });
    sessions.push(c);
    await expect(c.send(new Uint8Array(2000))).rejects.toThrow(TcpclError);
    const r = await raw(port);
    r.sock.write(
      Buffer.concat([
        contact(),
        sessInit(),
        segment(2, 7n, Buffer.alloc(600)),
        segment(1, 7n, Buffer.alloc(600)),
      ]),
    );
    await new Promise((res) => setTimeout(res, 200));
    const bytes = r.received();
    const i = bytes.indexOf(Buffer.from([MsgType.XferRefuse, XferRefuseReason.NoResources]));
    expect(i).toBeGreaterThan(0);
    expect(bytes.readBigUInt64BE(i + 2)).toBe(7n);
    r.sock.destroy();
  });
});

describe('TCPCLv4 hostile peers', () => {
  it('wrong magic: the connection is closed without a session', async () => {
    const { port } = await server();
    const r = await raw(port);
    r.sock.write('GET / HTTP/1.1\r\n\r\n');
    await r.closed;
    expect(r.received().length).toBe(6); // only our contact header
  });

  it('version mismatch: SESS_TERM "version mismatch"', async () => {
    const { port } = await server();
    const r = await raw(port);
    r.sock.write(contact(3));
    await r.closed;
    expect(sessTermReason(r.received(), 6)).toBe(SessTermReason.VersionMismatch);
  });

  it('oversized segment and oversized lengths: SESS_TERM "resource exhaustion", nothing buffered', async () => {
    const { port } = await server();
    const r1 = await raw(port);
    r1.sock.write(
      Buffer.concat([contact(), sessInit(), segment(3, 1n, Buffer.alloc(0), 1n << 40n)]),
    );
    await r1.closed;
    expect(sessTermReason(r1.received(), 6)).toBe(SessTermReason.ResourceExhaustion);
    const r2 = await raw(port);
    r2.sock.write(Buffer.concat([contact(), sessInit('ipn:9.0', 1 << 20, 60_000)]));
    await r2.closed;
    expect(sessTermReason(r2.received(), 6)).toBe(SessTermReason.ResourceExhaustion);
  });

  it('unknown message type: MSG_REJECT "type unknown", then SESS_TERM', async () => {
    const { port } = await server();
    const r = await raw(port);
    r.sock.write(Buffer.concat([contact(), sessInit(), Buffer.from([0x42])]));
    await r.closed;
    const bytes = r.received();
    const i = bytes.indexOf(Buffer.from([MsgType.MsgReject, 1, 0x42]));
    expect(i).toBeGreaterThan(0);
    expect(sessTermReason(bytes, i)).toBe(SessTermReason.Unknown);
  });

  it('messages before SESS_INIT are unexpected', async () => {
    const { port } = await server();
    const r = await raw(port);
    r.sock.write(Buffer.concat([contact(), Buffer.from([MsgType.Keepalive])]));
    await r.closed;
    expect(
      r.received().indexOf(Buffer.from([MsgType.MsgReject, 3, MsgType.Keepalive])),
    ).toBeGreaterThan(0);
  });

  it('half-open and slowloris peers are cut off while a good session keeps working', async () => {
    const { port, got } = await server({ setupTimeoutMs: 1200, messageTimeoutMs: 300 });
    const good = await tcpclConnect('127.0.0.1', port, { nodeId: 'ipn:1.0' });
    sessions.push(good);
    const silent = await raw(port); // never says anything
    const slow = await raw(port);
    slow.sock.write(contact());
    const init = sessInit();
    let i = 0;
    const drip = setInterval(() => {
      if (i < init.length && !slow.sock.destroyed) slow.sock.write(init.subarray(i, ++i));
    }, 100);
    for (let k = 0; k < 10; k++) await good.send(new Uint8Array([k]));
    await Promise.all([silent.closed, slow.closed]);
    clearInterval(drip);
    expect(sessTermReason(slow.received(), 6)).toBe(SessTermReason.IdleTimeout);
    expect(silent.received().length).toBe(6);
    await good.send(new Uint8Array([99]));
    expect(got.map((b) => b[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 99]);
  });

  it('over capacity: SESS_TERM "busy"', async () => {
    const { port } = await server({ sessionsMax: 1 });
    const a = await tcpclConnect('127.0.0.1', port, { nodeId: 'ipn:1.0' });
    sessions.push(a);
    const err = await tcpclConnect('127.0.0.1', port, { nodeId: 'ipn:3.0' }).catch(
      (e: unknown) => e,
    );
    expect((err as TcpclError).reason).toBe(SessTermReason.Busy);
  });
});
