import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isGenesisError } from '../../src/core/index.ts';
import {
  FabricErrorCode,
  parseWorkloadSpec,
  parseWorkloadText,
  Scheduler,
  type TileInfo,
  type WorkloadSpecInput,
} from '../../src/fabric/index.ts';

const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy';

function spec(over: Partial<WorkloadSpecInput> & { name: string }) {
  return parseWorkloadSpec({ module: CID, cpuMillis: 100, memoryMb: 64, ...over });
}

function tiles(
  pods: number,
  perPod: number,
  hubs = 1,
  extra: (i: number) => Partial<TileInfo> = () => ({}),
): TileInfo[] {
  const out: TileInfo[] = [];
  for (let h = 1; h <= hubs; h++)
    for (let p = 1; p <= pods; p++)
      for (let t = 1; t <= perPod; t++) {
        const i = out.length;
        out.push({
          name: `eu1.h${h}.p${p}.t${String(t).padStart(2, '0')}`,
          pod: `eu1.h${h}.p${p}`,
          hub: `eu1.h${h}`,
          cpuMillis: 1000,
          memoryMb: 1024,
          labels: {},
          capabilities: ['wasm.run'],
          ...extra(i),
        });
      }
  return out;
}

function sched(ts: TileInfo[]): Scheduler {
  const s = new Scheduler();
  for (const t of ts) s.upsertTile(t);
  return s;
}

describe('workload specs', () => {
  it('applies defaults and validates a YAML spec', () => {
    const [w] = parseWorkloadText(
      `name: filter\nmodule: ${CID}\ncpuMillis: 250\nmemoryMb: 32\nreplicas: 3\n`,
    );
    expect(w).toMatchObject({
      name: 'filter',
      replicas: 3,
      priority: 0,
      strategy: 'binpack',
      constraints: { level: 'tile', labels: {} },
    });
  });

  it('names the offending field', () => {
    try {
      parseWorkloadSpec({ name: 'x', module: 'not-a-cid', cpuMillis: 1, memoryMb: 1 });
      expect.unreachable();
    } catch (e) {
      expect(isGenesisError(e, FabricErrorCode.SpecInvalid)).toBe(true);
      expect((e as Error).message).toContain('module');
    }
    expect(() => spec({ name: 'x', spread: { over: 'pod', targets: { a: 60, b: 30 } } })).toThrow(
      /sum to 100/,
    );
    expect(() => spec({ name: 'x', extra: 1 } as never)).toThrow();
  });
});

describe('scheduler', () => {
  it('bin-packs onto the fullest tile that fits', () => {
    const s = sched(tiles(1, 3));
    s.bind('pre', spec({ name: 'pre', cpuMillis: 500 }), 'eu1.h1.p1.t02');
    const p = s.place('a.r0', spec({ name: 'a', cpuMillis: 400 }));
    expect(p?.tile).toBe('eu1.h1.p1.t02');
  });

  it('spreads by utilisation when asked', () => {
    const s = sched(tiles(1, 3));
    s.bind('pre', spec({ name: 'pre', cpuMillis: 500 }), 'eu1.h1.p1.t02');
    const p = s.place('a.r0', spec({ name: 'a', cpuMillis: 400, strategy: 'spread' }));
    expect(p?.tile).not.toBe('eu1.h1.p1.t02');
  });

  it('honours labels, capabilities and subtree constraints and explains rejections', () => {
    const s = sched(tiles(2, 2, 1, (i) => ({ labels: { gpu: i === 3 ? 'yes' : 'no' } })));
    const w = spec({ name: 'g', constraints: { labels: { gpu: 'yes' } } });
    expect(s.place('g.r0', w)?.tile).toBe('eu1.h1.p2.t02');
    const ex = s.explain(w);
    expect(ex.feasible).toBe(1);
    expect(ex.rejectedBy['labels']).toBe(3);
    expect(s.place('c.r0', spec({ name: 'c', capabilities: ['gpu.cuda'] }))).toBeUndefined();
    expect(
      s
        .place('u.r0', spec({ name: 'u', constraints: { under: 'eu1.h1.p1' } }))
        ?.tile.startsWith('eu1.h1.p1.'),
    ).toBe(true);
  });

  it('required anti-affinity keeps replicas on distinct pods', () => {
    const s = sched(tiles(3, 4));
    const w = spec({
      name: 'ha',
      replicas: 4,
      antiAffinity: [{ workload: 'ha', scope: 'pod', required: true }],
    });
    const pods = [0, 1, 2].map((r) =>
      s.place(`ha.r${r}`, w)?.tile.split('.').slice(0, 3).join('.'),
    );
    expect(new Set(pods).size).toBe(3);
    expect(s.place('ha.r3', w)).toBeUndefined();
    expect(s.explain(w).rejectedBy['anti-affinity']).toBe(12);
  });

  it('required affinity co-locates with another workload', () => {
    const s = sched(tiles(3, 2));
    s.bind('db.r0', spec({ name: 'db' }), 'eu1.h1.p3.t01');
    const p = s.place(
      'api.r0',
      spec({ name: 'api', affinity: [{ workload: 'db', scope: 'pod', required: true }] }),
    );
    expect(p?.tile.startsWith('eu1.h1.p3.')).toBe(true);
  });

  it('spreads across hubs by target percentages', () => {
    const s = sched(tiles(2, 10, 2));
    const w = spec({
      name: 'sp',
      spread: { over: 'hub', targets: { 'eu1.h1': 75, 'eu1.h2': 25 } },
    });
    const hubs: Record<string, number> = {};
    for (let r = 0; r < 40; r++) {
      const t = s.place(`sp.r${r}`, w)?.tile as string;
      const hub = t.split('.').slice(0, 2).join('.');
      hubs[hub] = (hubs[hub] ?? 0) + 1;
    }
    expect(hubs['eu1.h1']).toBe(30);
    expect(hubs['eu1.h2']).toBe(10);
  });

  it('preempts the lowest priorities first when nothing fits', () => {
    const s = sched(tiles(1, 2));
    s.bind('lo.r0', spec({ name: 'lo', cpuMillis: 900, priority: 1 }), 'eu1.h1.p1.t01');
    s.bind('mid.r0', spec({ name: 'mid', cpuMillis: 900, priority: 5 }), 'eu1.h1.p1.t02');
    const p = s.place('hi.r0', spec({ name: 'hi', cpuMillis: 500, priority: 10 }));
    expect(p).toMatchObject({ tile: 'eu1.h1.p1.t01', victims: ['lo.r0'] });
    expect(s.placementOf('lo.r0')).toBeUndefined();
    // Equal priority never preempts.
    expect(s.place('hi2.r0', spec({ name: 'hi2', cpuMillis: 600, priority: 5 }))).toBeUndefined();
  });

  it('property: placements never exceed a tile capacity and unbind restores it', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            cpu: fc.integer({ min: 1, max: 700 }),
            mem: fc.integer({ min: 1, max: 700 }),
            prio: fc.integer({ min: 0, max: 3 }),
          }),
          { maxLength: 60 },
        ),
        (ws) => {
          const ts = tiles(2, 3);
          const s = sched(ts);
          const ids: string[] = [];
          ws.forEach((w, i) => {
            const p = s.place(
              `w${i}.r0`,
              spec({ name: `w${i}`, cpuMillis: w.cpu, memoryMb: w.mem, priority: w.prio }),
            );
            if (p !== undefined) ids.push(`w${i}.r0`);
          });
          for (const t of ts) {
            const f = s.freeOn(t.name);
            expect(f?.cpuMillis).toBeGreaterThanOrEqual(0);
            expect(f?.memoryMb).toBeGreaterThanOrEqual(0);
          }
          for (const id of ids) s.unbind(id);
          for (const t of ts) expect(s.freeOn(t.name)).toEqual({ cpuMillis: 1000, memoryMb: 1024 });
          expect(s.placedCount).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('never places on unschedulable tiles', () => {
    const s = sched(tiles(1, 2));
    s.setSchedulable('eu1.h1.p1.t01', false);
    for (let r = 0; r < 5; r++)
      expect(s.place(`x.r${r}`, spec({ name: 'x' }))?.tile).toBe('eu1.h1.p1.t02');
  });
});
