import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGenesisError, TransportErrorCode } from '../../src/core/index.ts';
import { NatsTransport } from '../../src/fabric/index.ts';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts';
import { describeTransportCompliance, waitFor } from '../support/transport-compliance.ts';

let server: TestNatsServer;
beforeAll(async () => {
  server = await startNatsServer({ jetstream: false });
});
afterAll(async () => {
  await server.stop();
});

describeTransportCompliance('nats', async () => {
  const a = await NatsTransport.connect({ servers: server.url, name: 'a' });
  const b = await NatsTransport.connect({ servers: server.url, name: 'b' });
  return {
    a,
    b,
    async close() {
      await a.close();
      await b.close();
    },
  };
});

describe('NatsTransport specifics', () => {
  it('drops the oldest when a bounded queue overflows within one delivery turn, and counts it', async () => {
    const a = await NatsTransport.connect({ servers: server.url });
    try {
      const seen: number[] = [];
      const sub = a.subscribe(
        'burst.x',
        (m) => {
          seen.push(m.data[0] as number);
        },
        { pendingMessagesMax: 4, dropPolicy: 'drop-oldest' },
      );
      await a.flush();
      // One connection: the burst comes back in few socket reads; beyond the per-turn inline
      // budget, messages queue under the bound before a drain turn.
      for (let i = 0; i < 5000; i++) a.publish('burst.x', new Uint8Array([i % 256]));
      await a.flush();
      await waitFor(() => seen.length + sub.dropped === 5000);
      expect(sub.dropped).toBeGreaterThan(0);
      expect(a.stats().dropped).toBe(sub.dropped);
      expect(seen[seen.length - 1]).toBe(4999 % 256);
    } finally {
      await a.close();
    }
  });

  it('counts handler errors instead of failing the subscription', async () => {
    const a = await NatsTransport.connect({ servers: server.url });
    try {
      let n = 0;
      a.subscribe('err.x', () => {
        n++;
        throw new Error('boom');
      });
      await a.flush();
      a.publish('err.x', new Uint8Array(1));
      a.publish('err.x', new Uint8Array(1));
      await a.flush();
      await waitFor(() => n === 2);
      expect(a.stats().handlerErrors).toBe(2);
    } finally {
      await a.close();
    }
  });

  it('rejects header keys NATS cannot frame', async () => {
    const a = await NatsTransport.connect({ servers: server.url });
    try {
      expect(() => a.publish('h.x', new Uint8Array(0), { headers: { 'bad key': 'v' } })).toThrow();
      expect(() => a.publish('h.x', new Uint8Array(0), { headers: { k: 'a\r\nb' } })).toThrow();
    } finally {
      await a.close();
    }
  });

  it('rejects pending requests with TRANSPORT_CLOSED on close', async () => {
    const a = await NatsTransport.connect({ servers: server.url });
    a.subscribe('never.answers', () => {});
    await a.flush();
    const p = a.request('never.answers', new Uint8Array(0), { timeoutMs: 5_000 });
    await a.close();
    await expect(p).rejects.toSatisfy((e: unknown) => isGenesisError(e, TransportErrorCode.Closed));
  });

  it('fails to connect with a typed error when no server listens', async () => {
    await expect(
      NatsTransport.connect({ servers: 'nats://127.0.0.1:1', connectTimeoutMs: 500 }),
    ).rejects.toSatisfy((e: unknown) => isGenesisError(e, TransportErrorCode.Closed));
  });
});
