import { describe, expect, it } from 'vitest';
import {
  InprocTransport,
  isGenesisError,
  subjectMatches,
  TransportErrorCode,
  VirtualClock,
} from '../../src/core/index.ts';
import { describeTransportCompliance } from '../support/transport-compliance.ts';

describeTransportCompliance('inproc', async () => {
  const t = new InprocTransport();
  return { a: t, b: t, close: () => t.close() };
});

describe('InprocTransport specifics', () => {
  it('drop-oldest keeps the freshest messages of a full queue', async () => {
    const t = new InprocTransport();
    const seen: number[] = [];
    const sub = t.subscribe(
      'hb.x',
      (m) => {
        seen.push(m.data[0] as number);
      },
      { pendingMessagesMax: 4, dropPolicy: 'drop-oldest' },
    );
    for (let i = 0; i < 10; i++) t.publish('hb.x', new Uint8Array([i]));
    await t.flush();
    expect(seen).toEqual([6, 7, 8, 9]);
    expect(sub.dropped).toBe(6);
    expect(t.stats().dropped).toBe(6);
  });

  it('times requests out in virtual time', async () => {
    const clock = new VirtualClock();
    const t = new InprocTransport({ clock });
    t.subscribe('svc', () => {});
    const p = t.request('svc', new Uint8Array(0), { timeoutMs: 40_000 });
    const settled = p.then(
      () => 'ok',
      (e: unknown) => (isGenesisError(e, TransportErrorCode.Timeout) ? 'timeout' : 'other'),
    );
    await clock.advance(39_999);
    await clock.advance(2);
    expect(await settled).toBe('timeout');
  });

  it('counts handler failures without breaking delivery', async () => {
    const t = new InprocTransport();
    let ok = 0;
    t.subscribe('e', () => {
      throw new Error('boom');
    });
    t.subscribe('e', () => {
      ok++;
    });
    t.publish('e', new Uint8Array(0));
    await t.flush();
    expect(ok).toBe(1);
    expect(t.stats().handlerErrors).toBe(1);
  });

  it('rejects pending requests on close and prunes request inboxes', async () => {
    const t = new InprocTransport();
    t.subscribe('svc', () => {});
    const p = t.request('svc', new Uint8Array(0), { timeoutMs: 10_000 });
    await t.close();
    await expect(p).rejects.toSatisfy((e: unknown) => isGenesisError(e, TransportErrorCode.Closed));
  });

  it('matches subjects like NATS', () => {
    expect(subjectMatches('a.*', 'a.b')).toBe(true);
    expect(subjectMatches('a.*', 'a.b.c')).toBe(false);
    expect(subjectMatches('a.>', 'a')).toBe(false);
    expect(subjectMatches('a.>', 'a.b.c')).toBe(true);
    expect(subjectMatches('*.b', 'a.b')).toBe(true);
  });

  it('leaves no subscriptions behind after many requests', async () => {
    const t = new InprocTransport();
    t.subscribe('svc', (m) => {
      m.respond(m.data);
    });
    for (let i = 0; i < 100; i++) await t.request('svc', new Uint8Array([i]));
    expect(t.stats().subscriptions).toBe(1);
  });
});
