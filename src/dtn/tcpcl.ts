/**
 * The TCP convergence layer, version 4 (RFC 9174): contact header, optional TLS, SESS_INIT
 * negotiation, transfers as XFER_SEGMENTs acknowledged by XFER_ACKs, XFER_REFUSE, KEEPALIVE,
 * SESS_TERM and MSG_REJECT.
 *
 * Hostile peers are bounded everywhere: the receive buffer never holds more than one segment
 * (capped by our segment MRU) plus one header; a transfer never grows past our transfer MRU; a
 * node ID or extension list longer than its limit ends the session with SESS_TERM "resource
 * exhaustion"; a peer that does not finish the contact header and SESS_INIT in time, or dribbles
 * a message more slowly than MESSAGE_COMPLETE_MS (slowloris), or stays silent past twice the
 * keepalive interval, is cut off. Each session only ever touches its own socket and buffers, so
 * one bad peer cannot stop the others.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { type SecureContextOptions, TLSSocket, connect as tlsConnect } from 'node:tls';
import {
  type Clock,
  type Logger,
  SystemClock,
  silentLogger,
  type TimerHandle,
} from '../core/index.ts';
import type { ConvergenceLink } from './agent.ts';
import { nodeIdOf, parseEid } from './eid.ts';
import { DtnError, DtnErrorCode } from './errors.ts';
import { BUNDLE_BYTES_MAX } from './limits.ts';

/** Contact header magic "dtn!" (RFC 9174 §4.2). */
export const TCPCL_MAGIC = Buffer.from('dtn!', 'ascii');
/** TCPCL version. */
export const TCPCL_VERSION = 4;
/** Contact header length: magic, version, flags. */
export const CONTACT_HEADER_BYTES = 6;
/** Largest segment we accept (our segment MRU). */
export const TCPCL_SEGMENT_MRU_BYTES = 1024 * 1024;
/** Largest transfer we accept (our transfer MRU). */
export const TCPCL_TRANSFER_MRU_BYTES = BUNDLE_BYTES_MAX;
/** Longest node ID a peer may announce. */
export const TCPCL_NODE_ID_BYTES_MAX = 1024;
/** Most bytes of session or transfer extension items a peer may send. */
export const TCPCL_EXTENSION_BYTES_MAX = 4096;
/** Time allowed from TCP connect to an established session. */
export const TCPCL_SESSION_SETUP_MS = 10_000;
/** Time allowed for one message to arrive once its first byte has (anti-slowloris). */
export const TCPCL_MESSAGE_COMPLETE_MS = 10_000;
/** Keepalive interval we propose, seconds (0 disables). */
export const TCPCL_KEEPALIVE_S_DEFAULT = 15;
/** Most sessions one server holds; more are refused with SESS_TERM "busy". */
export const TCPCL_SESSIONS_MAX = 256;
/** Most transfers one session may have unacknowledged at once. */
export const TCPCL_TRANSFERS_IN_FLIGHT_MAX = 64;

/** Message type codes (RFC 9174 §7.2 / §9.5). */
export const MsgType = {
  XferSegment: 1,
  XferAck: 2,
  XferRefuse: 3,
  Keepalive: 4,
  SessTerm: 5,
  MsgReject: 6,
  SessInit: 7,
} as const;
/** SESS_TERM reason codes (RFC 9174 §6.1). */
export const SessTermReason = {
  Unknown: 0,
  IdleTimeout: 1,
  VersionMismatch: 2,
  Busy: 3,
  ContactFailure: 4,
  ResourceExhaustion: 5,
} as const;
/** XFER_REFUSE reason codes (RFC 9174 §5.2.4). */
export const XferRefuseReason = {
  Unknown: 0,
  Completed: 1,
  NoResources: 2,
  Retransmit: 3,
  NotAcceptable: 4,
  ExtensionFailure: 5,
  SessionTerminating: 6,
} as const;
/** MSG_REJECT reason codes (RFC 9174 §5.1.1). */
export const MsgRejectReason = { TypeUnknown: 1, Unsupported: 2, Unexpected: 3 } as const;

const SEG_END = 0x01;
const SEG_START = 0x02;

/** A TCPCL failure; `reason` is the SESS_TERM or XFER_REFUSE reason when there is one. */
export class TcpclError extends DtnError {
  constructor(
    message: string,
    readonly reason?: number,
    options: { cause?: unknown } = {},
  ) {
    super(DtnErrorCode.Tcpcl, message, {
      ...options,
      details: reason === undefined ? {} : { reason },
    });
    this.name = 'TcpclError';
  }
}

/** Options shared by both ends. */
export interface TcpclOptions {
  /** Our node ID, e.g. `ipn:1.0`. */
  readonly nodeId: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** TLS key material; when set we advertise CAN_TLS and use TLS if the peer does too. */
  readonly tls?: SecureContextOptions & {
    readonly rejectUnauthorized?: boolean;
    readonly servername?: string;
  };
  /** Require TLS: refuse sessions the peer will not secure. */
  readonly requireTls?: boolean;
  readonly keepaliveS?: number;
  readonly segmentMruBytes?: number;
  readonly transferMruBytes?: number;
  /** Overrides TCPCL_SESSION_SETUP_MS (tests). */
  readonly setupTimeoutMs?: number;
  /** Overrides TCPCL_MESSAGE_COMPLETE_MS (tests). */
  readonly messageTimeoutMs?: number;
  /** Answer the contact header with SESS_TERM "busy" (set by a full server). */
  readonly refuseBusy?: boolean;
  /** Called with each received bundle. */
  readonly onBundle?: (bytes: Uint8Array, session: TcpclSession) => void;
}

/** Session states. */
type State = 'contact' | 'tls' | 'init' | 'established' | 'ending' | 'closed';

interface Outgoing {
  readonly id: bigint;
  readonly total: number;
  resolve(): void;
  reject(e: Error): void;
}

/** A duplex over `raw` that first yields `head` (bytes already read from it). */
function replayingStream(raw: Socket, head: Buffer): Duplex {
  const d = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      raw.write(chunk, cb);
    },
    final(cb) {
      raw.end();
      cb();
    },
    destroy(err, cb) {
      raw.destroy();
      cb(err);
    },
  });
  d.push(head);
  raw.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) raw.pause();
  });
  raw.on('end', () => d.push(null));
  raw.on('close', () => d.destroy());
  return d;
}

/** A byte queue over received chunks, with cheap peeks and exact takes. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Makes the first `n` bytes contiguous and returns them (without consuming). */
  peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first;
    const merged = Buffer.concat(this.chunks, this.length);
    this.chunks = [merged];
    return merged;
  }

  take(n: number): Buffer {
    const head = this.peek(n);
    const out = head.subarray(0, n);
    if (head.length === n) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    this.length -= n;
    return out;
  }
}

/** One TCPCLv4 session, either side. Emits 'established' and 'closed'. */
export class TcpclSession extends EventEmitter {
  state: State = 'contact';
  peerNodeId = '';
  /** Negotiated values (RFC 9174 §4.7). */
  keepaliveS = 0;
  peerSegmentMru = 0;
  peerTransferMru = 0;
  /** Why the session ended: the SESS_TERM reason we sent or received. */
  termReason: number | undefined;
  readonly stats = {
    bundlesIn: 0,
    bundlesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    rejected: 0,
    refused: 0,
  };
  private socket: Socket;
  private readonly rx = new ByteQueue();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly outgoing = new Map<bigint, Outgoing>();
  private nextTransferId = 0n;
  private rxTransfer: { id: bigint; parts: Buffer[]; length: number; refused: boolean } | undefined;
  private setupTimer: TimerHandle | undefined;
  private messageTimer: TimerHandle | undefined;
  private keepaliveTimer: TimerHandle | undefined;
  private lastRxMs = 0;
  private peerCanTls = false;
  private sentContact = false;

  constructor(
    socket: Socket,
    readonly active: boolean,
    private readonly opts: TcpclOptions,
  ) {
    super();
    this.socket = socket;
    this.clock = opts.clock ?? new SystemClock();
    this.logger = opts.logger ?? silentLogger();
    this.attach(socket);
    this.setupTimer = this.clock.setTimeout(() => {
      if (this.state !== 'established' && this.state !== 'closed')
        this.terminate(SessTermReason.ContactFailure, 'session setup timed out');
    }, opts.setupTimeoutMs ?? TCPCL_SESSION_SETUP_MS);
    this.sendContactHeader();
  }

  private attach(socket: Socket): void {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.logger.debug({ err: String(e) }, 'tcpcl socket error'));
    socket.on('close', () => this.closed());
  }

  private sendContactHeader(): void {
    if (this.sentContact) return;
    this.sentContact = true;
    const h = Buffer.alloc(CONTACT_HEADER_BYTES);
    TCPCL_MAGIC.copy(h, 0);
    h[4] = TCPCL_VERSION;
    h[5] = this.opts.tls !== undefined ? 0x01 : 0x00;
    this.socket.write(h);
  }

  private onData(d: Buffer): void {
    if (this.state === 'closed') return;
    this.rx.push(d);
    this.lastRxMs = this.clock.now();
    try {
      this.parse();
    } catch (e) {
      this.logger.debug({ err: String(e) }, 'tcpcl parse failure');
      this.terminate(SessTermReason.Unknown, String(e));
    }
    // Anti-slowloris: a partial message must complete within MESSAGE_COMPLETE_MS.
    if (
      this.rx.length > 0 &&
      this.messageTimer === undefined &&
      (this.state as State) !== 'closed'
    ) {
      this.messageTimer = this.clock.setTimeout(() => {
        this.messageTimer = undefined;
        if (this.rx.length > 0)
          this.terminate(SessTermReason.IdleTimeout, 'message not completed in time');
      }, this.opts.messageTimeoutMs ?? TCPCL_MESSAGE_COMPLETE_MS);
    } else if (this.rx.length === 0 && this.messageTimer !== undefined) {
      this.clock.clearTimer(this.messageTimer);
      this.messageTimer = undefined;
    }
  }

  private parse(): void {
    for (;;) {
      if (this.state === 'closed' || this.state === 'tls') return;
      if (this.state === 'contact') {
        if (!this.parseContact()) return;
        continue;
      }
      if (this.rx.length < 1) return;
      const type = this.rx.peek(1)[0] as number;
      if (this.state === 'init' && type !== MsgType.SessInit && type !== MsgType.SessTerm) {
        this.reject(type, MsgRejectReason.Unexpected);
        this.terminate(SessTermReason.ContactFailure, `message ${type} before SESS_INIT`);
        return;
      }
      const done = this.parseMessage(type);
      if (!done) return;
    }
  }

  private parseContact(): boolean {
    if (this.rx.length < CONTACT_HEADER_BYTES) {
      // Fail fast on a wrong magic without waiting for all six bytes.
      const have = this.rx.length === 0 ? Buffer.alloc(0) : this.rx.peek(this.rx.length);
      if (
        !TCPCL_MAGIC.subarray(0, Math.min(4, have.length)).equals(
          have.subarray(0, Math.min(4, have.length)),
        )
      )
        this.abort('wrong contact header magic');
      return false;
    }
    const h = this.rx.take(CONTACT_HEADER_BYTES);
    if (!h.subarray(0, 4).equals(TCPCL_MAGIC)) {
      // RFC 9174 §4.3: without the magic this is not a TCPCL peer; close without SESS_TERM.
      this.abort('wrong contact header magic');
      return false;
    }
    if (h[4] !== TCPCL_VERSION) {
      this.state = 'init';
      this.terminate(SessTermReason.VersionMismatch, `peer speaks TCPCL version ${h[4]}`);
      return false;
    }
    this.peerCanTls = ((h[5] as number) & 0x01) !== 0;
    const useTls = this.opts.tls !== undefined && this.peerCanTls;
    if (this.opts.requireTls === true && !useTls) {
      this.state = 'init';
      this.terminate(SessTermReason.ContactFailure, 'TLS required but the peer cannot do it');
      return false;
    }
    if (this.opts.refuseBusy === true) {
      // Over capacity: end the session before SESS_INIT (RFC 9174 §6.1 reason "busy").
      this.state = 'init';
      this.terminate(SessTermReason.Busy, 'too many sessions');
      return false;
    }
    if (useTls) {
      this.startTls();
      return false;
    }
    this.state = 'init';
    if (this.active) this.sendSessInit();
    return true;
  }

  private startTls(): void {
    this.state = 'tls';
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    // The peer may already have sent its first TLS record behind its contact header. Node's
    // TLS over a raw socket handle would not see bytes we already read, so in that case TLS
    // runs over a stream that replays them first.
    const carrier: Duplex =
      this.rx.length > 0 ? replayingStream(raw, this.rx.take(this.rx.length)) : raw;
    const tls = this.opts.tls ?? {};
    const secure: TLSSocket = this.active
      ? tlsConnect({
          socket: carrier,
          ...tls,
          servername: tls.servername ?? 'localhost',
          rejectUnauthorized: tls.rejectUnauthorized ?? true,
        })
      : new TLSSocket(carrier, { isServer: true, ...tls, requestCert: false });
    this.socket = secure;
    this.attach(secure);
    secure.once('secure', () => this.tlsReady());
    secure.once('secureConnect', () => this.tlsReady());
  }

  private tlsReady(): void {
    if (this.state !== 'tls') return;
    this.state = 'init';
    if (this.active) this.sendSessInit();
    this.parse();
  }

  /** True when the session runs over TLS. */
  get secure(): boolean {
    return this.socket instanceof TLSSocket;
  }

  private sendSessInit(): void {
    const nodeId = Buffer.from(this.opts.nodeId, 'utf8');
    const m = Buffer.alloc(1 + 2 + 8 + 8 + 2 + nodeId.length + 4);
    let o = 0;
    m[o++] = MsgType.SessInit;
    m.writeUInt16BE(this.opts.keepaliveS ?? TCPCL_KEEPALIVE_S_DEFAULT, o);
    o += 2;
    m.writeBigUInt64BE(BigInt(this.opts.segmentMruBytes ?? TCPCL_SEGMENT_MRU_BYTES), o);
    o += 8;
    m.writeBigUInt64BE(BigInt(this.opts.transferMruBytes ?? TCPCL_TRANSFER_MRU_BYTES), o);
    o += 8;
    m.writeUInt16BE(nodeId.length, o);
    o += 2;
    nodeId.copy(m, o);
    o += nodeId.length;
    m.writeUInt32BE(0, o);
    this.socket.write(m);
  }

  /** Parses one message of `type`; returns false when more bytes are needed. */
  private parseMessage(type: number): boolean {
    switch (type) {
      case MsgType.SessInit:
        return this.parseSessInit();
      case MsgType.XferSegment:
        return this.parseSegment();
      case MsgType.XferAck: {
        if (this.rx.length < 18) return false;
        const b = this.rx.take(18);
        this.onAck(b[1] as number, b.readBigUInt64BE(2), b.readBigUInt64BE(10));
        return true;
      }
      case MsgType.XferRefuse: {
        if (this.rx.length < 10) return false;
        const b = this.rx.take(10);
        const id = b.readBigUInt64BE(2);
        const out = this.outgoing.get(id);
        if (out !== undefined) {
          this.outgoing.delete(id);
          this.stats.refused++;
          out.reject(new TcpclError(`peer refused transfer ${id}`, b[1]));
        }
        return true;
      }
      case MsgType.Keepalive:
        this.rx.take(1);
        return true;
      case MsgType.SessTerm: {
        if (this.rx.length < 3) return false;
        const b = this.rx.take(3);
        this.termReason = b[2] as number;
        if (((b[1] as number) & 0x01) === 0 && this.state !== 'ending') {
          // Reply with the same reason and close once our pending transfers are done (§6.1).
          this.socket.write(Buffer.from([MsgType.SessTerm, 0x01, b[2] as number]));
        }
        this.state = 'ending';
        this.failOutgoing(new TcpclError('session terminated by peer', b[2]));
        this.socket.end();
        return true;
      }
      case MsgType.MsgReject: {
        if (this.rx.length < 3) return false;
        this.rx.take(3);
        this.stats.rejected++;
        return true;
      }
      default:
        // RFC 9174 §5.1.1: an unknown type cannot be skipped (its length is unknown): reject it
        // and end the session.
        this.rx.take(1);
        this.reject(type, MsgRejectReason.TypeUnknown);
        this.terminate(SessTermReason.Unknown, `unknown message type ${type}`);
        return false;
    }
  }

  private parseSessInit(): boolean {
    if (this.state !== 'init') {
      this.reject(MsgType.SessInit, MsgRejectReason.Unexpected);
      this.rx.take(1);
      this.terminate(SessTermReason.Unknown, 'second SESS_INIT');
      return false;
    }
    const fixed = 1 + 2 + 8 + 8 + 2;
    if (this.rx.length < fixed) return false;
    const head = this.rx.peek(fixed);
    const nodeIdLen = head.readUInt16BE(19);
    if (nodeIdLen > TCPCL_NODE_ID_BYTES_MAX) {
      this.terminate(
        SessTermReason.ResourceExhaustion,
        `node ID of ${nodeIdLen} bytes exceeds TCPCL_NODE_ID_BYTES_MAX`,
      );
      return false;
    }
    if (this.rx.length < fixed + nodeIdLen + 4) return false;
    const extLen = this.rx.peek(fixed + nodeIdLen + 4).readUInt32BE(fixed + nodeIdLen);
    if (extLen > TCPCL_EXTENSION_BYTES_MAX) {
      this.terminate(
        SessTermReason.ResourceExhaustion,
        `session extensions of ${extLen} bytes exceed TCPCL_EXTENSION_BYTES_MAX`,
      );
      return false;
    }
    if (this.rx.length < fixed + nodeIdLen + 4 + extLen) return false;
    const m = this.rx.take(fixed + nodeIdLen + 4 + extLen);
    const peerKeepalive = m.readUInt16BE(1);
    const segMru = m.readBigUInt64BE(3);
    const xferMru = m.readBigUInt64BE(11);
    this.peerNodeId = m.subarray(21, 21 + nodeIdLen).toString('utf8');
    // Extension items: none is critical to us; a critical unknown one would end the session
    // (RFC 9174 §4.8), so check the critical flags.
    for (let o = 21 + nodeIdLen + 4; o + 5 <= m.length; ) {
      const flags = m[o] as number;
      const len = m.readUInt16BE(o + 3);
      if ((flags & 0x01) !== 0) {
        this.terminate(SessTermReason.ContactFailure, 'unknown critical session extension');
        return false;
      }
      o += 5 + len;
    }
    this.keepaliveS = Math.min(peerKeepalive, this.opts.keepaliveS ?? TCPCL_KEEPALIVE_S_DEFAULT);
    this.peerSegmentMru = Number(
      segMru > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : segMru,
    );
    this.peerTransferMru = Number(
      xferMru > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : xferMru,
    );
    if (this.peerSegmentMru < 1) {
      this.terminate(SessTermReason.ContactFailure, 'peer segment MRU is 0');
      return false;
    }
    if (!this.active) this.sendSessInit();
    this.established();
    return true;
  }

  private established(): void {
    this.state = 'established';
    if (this.setupTimer !== undefined) this.clock.clearTimer(this.setupTimer);
    this.setupTimer = undefined;
    this.lastRxMs = this.clock.now();
    if (this.keepaliveS > 0) {
      const ms = this.keepaliveS * 1000;
      this.keepaliveTimer = this.clock.setInterval(() => {
        if (this.state !== 'established') return;
        // RFC 9174 §5.1.1: no message for twice the interval ends the session.
        if (this.clock.now() - this.lastRxMs > 2 * ms)
          this.terminate(SessTermReason.IdleTimeout, 'peer idle');
        else this.socket.write(Buffer.from([MsgType.Keepalive]));
      }, ms);
    }
    this.emit('established');
  }

  private parseSegment(): boolean {
    if (this.rx.length < 10) return false;
    const head = this.rx.peek(10);
    const flags = head[1] as number;
    const id = head.readBigUInt64BE(2);
    let o = 10;
    if ((flags & SEG_START) !== 0) {
      if (this.rx.length < o + 4) return false;
      const extLen = this.rx.peek(o + 4).readUInt32BE(o);
      if (extLen > TCPCL_EXTENSION_BYTES_MAX) {
        this.terminate(
          SessTermReason.ResourceExhaustion,
          `transfer extensions of ${extLen} bytes exceed TCPCL_EXTENSION_BYTES_MAX`,
        );
        return false;
      }
      o += 4 + extLen;
    }
    if (this.rx.length < o + 8) return false;
    const lenBig = this.rx.peek(o + 8).readBigUInt64BE(o);
    const mru = this.opts.segmentMruBytes ?? TCPCL_SEGMENT_MRU_BYTES;
    if (lenBig > BigInt(mru)) {
      // A segment beyond our advertised MRU is a protocol violation we will not buffer.
      this.terminate(
        SessTermReason.ResourceExhaustion,
        `segment of ${lenBig} bytes exceeds our segment MRU ${mru}`,
      );
      return false;
    }
    const len = Number(lenBig);
    if (this.rx.length < o + 8 + len) return false;
    this.rx.take(o + 8);
    const data = this.rx.take(len);
    this.onSegment(flags, id, data);
    return true;
  }

  private onSegment(flags: number, id: bigint, data: Buffer): void {
    if ((flags & SEG_START) !== 0) {
      this.rxTransfer = { id, parts: [], length: 0, refused: false };
    }
    const t = this.rxTransfer;
    if (t === undefined || t.id !== id) {
      // A continuation without a start: refuse it (§5.2.4 reason "unknown").
      this.refuse(id, XferRefuseReason.Unknown);
      return;
    }
    if (t.refused) return;
    t.length += data.length;
    const max = this.opts.transferMruBytes ?? TCPCL_TRANSFER_MRU_BYTES;
    if (t.length > max) {
      t.refused = true;
      t.parts = [];
      this.refuse(id, XferRefuseReason.NoResources);
      return;
    }
    t.parts.push(Buffer.from(data));
    this.stats.bytesIn += data.length;
    const ack = Buffer.alloc(18);
    ack[0] = MsgType.XferAck;
    ack[1] = flags;
    ack.writeBigUInt64BE(id, 2);
    ack.writeBigUInt64BE(BigInt(t.length), 10);
    this.socket.write(ack);
    if ((flags & SEG_END) !== 0) {
      const bundle =
        t.parts.length === 1 ? (t.parts[0] as Buffer) : Buffer.concat(t.parts, t.length);
      this.rxTransfer = undefined;
      this.stats.bundlesIn++;
      this.opts.onBundle?.(new Uint8Array(bundle.buffer, bundle.byteOffset, bundle.length), this);
      this.emit('bundle', bundle);
    }
  }

  private onAck(flags: number, id: bigint, length: bigint): void {
    const out = this.outgoing.get(id);
    if (out === undefined) return;
    if ((flags & SEG_END) !== 0 && Number(length) === out.total) {
      this.outgoing.delete(id);
      this.stats.bundlesOut++;
      out.resolve();
    }
  }

  private refuse(id: bigint, reason: number): void {
    const m = Buffer.alloc(10);
    m[0] = MsgType.XferRefuse;
    m[1] = reason;
    m.writeBigUInt64BE(id, 2);
    this.socket.write(m);
  }

  private reject(type: number, reason: number): void {
    if (this.socket.writable)
      this.socket.write(Buffer.from([MsgType.MsgReject, reason, type & 0xff]));
  }

  /**
   * Sends one bundle as a transfer; resolves when the peer has acknowledged all of it.
   * @throws {TcpclError} if the session is not established, the bundle exceeds the peer's
   * transfer MRU, or the peer refuses the transfer.
   */
  send(bundle: Uint8Array): Promise<void> {
    if (this.state !== 'established')
      return Promise.reject(new TcpclError('session is not established'));
    if (bundle.length > this.peerTransferMru)
      return Promise.reject(
        new TcpclError(`bundle of ${bundle.length} bytes exceeds the peer's transfer MRU`),
      );
    if (this.outgoing.size >= TCPCL_TRANSFERS_IN_FLIGHT_MAX)
      return Promise.reject(new TcpclError('too many transfers in flight'));
    const id = this.nextTransferId++;
    const segMax = Math.max(1, Math.min(this.peerSegmentMru, TCPCL_SEGMENT_MRU_BYTES));
    return new Promise<void>((resolve, reject) => {
      this.outgoing.set(id, { id, total: bundle.length, resolve, reject });
      this.socket.cork();
      for (let off = 0; off === 0 || off < bundle.length; off += segMax) {
        const end = Math.min(bundle.length, off + segMax);
        const flags = (off === 0 ? SEG_START : 0) | (end === bundle.length ? SEG_END : 0);
        const h = Buffer.alloc(off === 0 ? 22 : 18);
        h[0] = MsgType.XferSegment;
        h[1] = flags;
        h.writeBigUInt64BE(id, 2);
        let o = 10;
        if (off === 0) {
          h.writeUInt32BE(0, o);
          o += 4;
        }
        h.writeBigUInt64BE(BigInt(end - off), o);
        this.socket.write(h);
        this.socket.write(bundle.subarray(off, end));
        this.stats.bytesOut += end - off;
        if (end === bundle.length) break;
      }
      this.socket.uncork();
    });
  }

  /** Ends the session with SESS_TERM (RFC 9174 §6.1). */
  terminate(reason: number, why = ''): void {
    if (this.state === 'closed' || this.state === 'ending') return;
    this.logger.debug({ reason, why, peer: this.peerNodeId }, 'tcpcl session terminating');
    const beforeContact = this.state === 'contact';
    this.termReason = reason;
    this.state = 'ending';
    if (!beforeContact && this.socket.writable)
      this.socket.write(Buffer.from([MsgType.SessTerm, 0x00, reason]));
    this.failOutgoing(new TcpclError(`session terminated: ${why}`, reason));
    this.socket.end();
    // Do not wait forever for the peer's reply: a half-open peer gets destroyed.
    this.clock.setTimeout(() => this.socket.destroy(), 2_000);
  }

  private abort(why: string): void {
    this.logger.debug({ why }, 'tcpcl connection aborted');
    this.state = 'ending';
    this.socket.destroy();
  }

  private failOutgoing(e: Error): void {
    for (const o of this.outgoing.values()) o.reject(e);
    this.outgoing.clear();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const t of [this.setupTimer, this.messageTimer, this.keepaliveTimer])
      if (t !== undefined) this.clock.clearTimer(t);
    this.failOutgoing(new TcpclError('connection closed'));
    this.emit('closed');
  }

  /** Resolves once established; rejects if the session closes first. */
  ready(): Promise<void> {
    if (this.state === 'established') return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.once('established', resolve);
      this.once('closed', () =>
        reject(new TcpclError('session closed before it was established', this.termReason)),
      );
    });
  }
}

/** A TCPCLv4 listener. */
export class TcpclServer {
  readonly sessions = new Set<TcpclSession>();
  private server: Server | undefined;

  constructor(
    private readonly opts: TcpclOptions & {
      readonly sessionsMax?: number;
      readonly onSession?: (s: TcpclSession) => void;
    },
  ) {}

  /** Listens and resolves with the bound port. */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e) =>
        reject(
          new TcpclError(
            `cannot listen on ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
            undefined,
            { cause: e },
          ),
        ),
      );
      server.listen(port, host, () => {
        const a = server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : port);
      });
    });
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const busy = this.sessions.size >= (this.opts.sessionsMax ?? TCPCL_SESSIONS_MAX);
    const s = new TcpclSession(
      socket,
      false,
      busy ? { ...this.opts, refuseBusy: true } : this.opts,
    );
    if (busy) return;
    this.sessions.add(s);
    s.once('closed', () => this.sessions.delete(s));
    s.once('established', () => this.opts.onSession?.(s));
  }

  /** Ends every session and stops listening. */
  async close(): Promise<void> {
    for (const s of this.sessions) s.terminate(SessTermReason.Unknown, 'server closing');
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Connects to a TCPCLv4 peer and resolves once the session is established. */
export async function tcpclConnect(
  host: string,
  port: number,
  opts: TcpclOptions,
): Promise<TcpclSession> {
  const socket = tcpConnect({ host, port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (e) =>
      reject(
        new TcpclError(
          `cannot connect to ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
          undefined,
          { cause: e },
        ),
      ),
    );
  });
  const s = new TcpclSession(socket, true, opts);
  await s.ready();
  return s;
}

/** Wraps a session as a {@link ConvergenceLink} for a bundle agent. */
export function tcpclLink(session: TcpclSession): ConvergenceLink {
  let peer: string;
  try {
    peer = nodeIdOf(parseEid(session.peerNodeId));
  } catch {
    peer = session.peerNodeId;
  }
  return {
    peer,
    maxBundleBytes: session.peerTransferMru,
    isUp: () => session.state === 'established',
    send: (bytes) => session.send(bytes),
  };
}
