/**
 * The transport compliance suite: every implementation of the core `Transport` contract (the
 * in-process one, the NATS one) must pass it. `a` and `b` are two connections to the same bus
 * (for the in-process transport, the same instance), so delivery across connections is tested.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  isGenesisError,
  type Message,
  type Transport,
  TransportErrorCode,
} from '../../src/core/index.ts';

/** Two connections to one bus and a way to tear them down. */
export interface TransportPair {
  readonly a: Transport;
  readonly b: Transport;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Waits until `cond()` holds, polling; fails after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('waitFor: condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Registers the compliance tests for one transport implementation. */
export function describeTransportCompliance(
  name: string,
  factory: () => Promise<TransportPair>,
): void {
  describe(`transport compliance: ${name}`, () => {
    let pair: TransportPair;
    beforeEach(async () => {
      pair = await factory();
    });
    afterEach(async () => {
      await pair.close();
    });

    it('delivers a published message to a subscriber on another connection', async () => {
      const got: Message[] = [];
      pair.b.subscribe('t.hello', (m) => {
        got.push(m);
      });
      await pair.b.flush();
      pair.a.publish('t.hello', enc.encode('hi'), { headers: { k: 'v' } });
      await pair.a.flush();
      await waitFor(() => got.length === 1);
      expect(dec.decode(got[0]?.data)).toBe('hi');
      expect(got[0]?.headers?.['k']).toBe('v');
      expect(got[0]?.subject).toBe('t.hello');
    });

    it('matches * to one token and > to one or more trailing tokens', async () => {
      const star: string[] = [];
      const full: string[] = [];
      pair.b.subscribe('w.*.x', (m) => {
        star.push(m.subject);
      });
      pair.b.subscribe('w.>', (m) => {
        full.push(m.subject);
      });
      await pair.b.flush();
      for (const s of ['w.a.x', 'w.a.b.x', 'w.a', 'w', 'v.a.x'])
        pair.a.publish(s, new Uint8Array([1]));
      await pair.a.flush();
      await waitFor(() => full.length === 3 && star.length === 1);
      await new Promise((r) => setTimeout(r, 30));
      expect(star).toEqual(['w.a.x']);
      expect(full.sort()).toEqual(['w.a', 'w.a.b.x', 'w.a.x']);
    });

    it('keeps per-publisher order on a subject', async () => {
      const seen: number[] = [];
      pair.b.subscribe('order.x', (m) => {
        seen.push(m.data[0] as number);
      });
      await pair.b.flush();
      for (let i = 0; i < 200; i++) pair.a.publish('order.x', new Uint8Array([i % 256]));
      await pair.a.flush();
      await waitFor(() => seen.length === 200);
      expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i % 256));
    });

    it('delivers each message to exactly one member of a queue group', async () => {
      const counts = [0, 0, 0];
      for (let i = 0; i < 3; i++) {
        const t = i === 0 ? pair.a : pair.b;
        t.subscribe(
          'q.work',
          () => {
            counts[i] = (counts[i] ?? 0) + 1;
          },
          { queue: 'workers' },
        );
      }
      let plain = 0;
      pair.b.subscribe('q.work', () => {
        plain++;
      });
      await pair.a.flush();
      await pair.b.flush();
      for (let i = 0; i < 90; i++) pair.a.publish('q.work', new Uint8Array(1));
      await pair.a.flush();
      await waitFor(() => plain === 90 && counts.reduce((x, y) => x + y, 0) === 90);
      await new Promise((r) => setTimeout(r, 30));
      expect(counts.reduce((x, y) => x + y, 0)).toBe(90);
      expect(plain).toBe(90);
    });

    it('answers requests and times out without a reply', async () => {
      pair.b.subscribe('svc.echo', (m) => {
        m.respond(enc.encode(`echo:${dec.decode(m.data)}`));
      });
      pair.b.subscribe('svc.silent', () => {});
      await pair.b.flush();
      const r = await pair.a.request('svc.echo', enc.encode('x'), { timeoutMs: 2_000 });
      expect(dec.decode(r.data)).toBe('echo:x');
      await expect(
        pair.a.request('svc.silent', new Uint8Array(0), { timeoutMs: 50 }),
      ).rejects.toSatisfy((e: unknown) => isGenesisError(e, TransportErrorCode.Timeout));
    });

    it('reports no responders at once', async () => {
      await expect(
        pair.a.request('nobody.home', new Uint8Array(0), { timeoutMs: 1_000 }),
      ).rejects.toSatisfy((e: unknown) => isGenesisError(e, TransportErrorCode.NoResponders));
    });

    it('stops delivery after unsubscribe', async () => {
      let n = 0;
      const sub = pair.b.subscribe('u.x', () => {
        n++;
      });
      await pair.b.flush();
      pair.a.publish('u.x', new Uint8Array(1));
      await pair.a.flush();
      await waitFor(() => n === 1);
      sub.unsubscribe();
      sub.unsubscribe();
      await pair.b.flush();
      pair.a.publish('u.x', new Uint8Array(1));
      await pair.a.flush();
      await new Promise((r) => setTimeout(r, 30));
      expect(n).toBe(1);
    });

    it('rejects invalid subjects and oversized payloads with typed errors', () => {
      for (const bad of ['', 'a..b', 'a b', 'a.>.b', '.a', 'a.']) {
        expect(() => pair.a.publish(bad, new Uint8Array(0))).toThrow();
        try {
          pair.a.publish(bad, new Uint8Array(0));
        } catch (e) {
          expect(isGenesisError(e, TransportErrorCode.SubjectInvalid)).toBe(true);
        }
      }
      expect(() => pair.a.publish('a.*', new Uint8Array(0))).toThrow();
      try {
        pair.a.publish('big', new Uint8Array(2 * 1024 * 1024));
        expect.unreachable();
      } catch (e) {
        expect(isGenesisError(e, TransportErrorCode.PayloadTooLarge)).toBe(true);
      }
    });

    it('bounds a slow subscriber queue and counts drops (drop-newest keeps the first)', async () => {
      const seen: number[] = [];
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const sub = pair.b.subscribe(
        'slow.x',
        async (m) => {
          seen.push(m.data[0] as number);
          if (seen.length === 1) await gate;
        },
        { pendingMessagesMax: 10, dropPolicy: 'drop-newest' },
      );
      await pair.b.flush();
      // The handler is asynchronous: the transport does not wait for it, so the queue bound
      // applies to messages not yet handed over. Publish a burst larger than the bound.
      for (let i = 0; i < 100; i++) pair.a.publish('slow.x', new Uint8Array([i]));
      await pair.a.flush();
      await waitFor(() => seen.length + sub.dropped >= 100 || sub.dropped > 0, 2_000);
      release();
      await waitFor(() => seen.length + sub.dropped === 100, 2_000);
      expect(seen[0]).toBe(0);
      for (let i = 1; i < seen.length; i++)
        expect(seen[i] as number).toBeGreaterThan(seen[i - 1] as number);
    });

    it('round-trips arbitrary payloads and headers', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 4096 }),
          fc.dictionary(
            fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/),
            fc.stringMatching(/^[!-~]([ -~]{0,30}[!-~])?$/),
            { maxKeys: 4 },
          ),
          async (data, headers) => {
            const got: Message[] = [];
            const sub = pair.b.subscribe('prop.rt', (m) => {
              got.push(m);
            });
            await pair.b.flush();
            pair.a.publish('prop.rt', data, Object.keys(headers).length > 0 ? { headers } : {});
            await pair.a.flush();
            await waitFor(() => got.length === 1);
            sub.unsubscribe();
            expect([...(got[0]?.data ?? [])]).toEqual([...data]);
            for (const [k, v] of Object.entries(headers)) expect(got[0]?.headers?.[k]).toBe(v);
          },
        ),
        { numRuns: 25 },
      );
    });

    it('rejects use after close with TRANSPORT_CLOSED', async () => {
      await pair.a.close();
      expect(() => pair.a.publish('x', new Uint8Array(0))).toThrow();
      try {
        pair.a.publish('x', new Uint8Array(0));
      } catch (e) {
        expect(isGenesisError(e, TransportErrorCode.Closed)).toBe(true);
      }
    });
  });
}
