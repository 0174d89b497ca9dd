import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  countByLevel,
  generateTopology,
  isGenesisError,
  loadTopologyFile,
  parseTopology,
} from '../../src/core/index.ts';

describe('topology', () => {
  it('generates the default 1/2/2/4 fabric with hierarchical names', () => {
    const t = generateTopology();
    expect(countByLevel(t)).toEqual({ global: 1, region: 1, hub: 2, pod: 4, tile: 16 });
    const tile = t.nodes.get('eu1.h2.p1.t03');
    expect(tile?.parent).toBe('eu1.h2.p1');
    expect(t.nodes.get('eu1.h2.p1')?.children).toContain('eu1.h2.p1.t03');
    expect(t.nodes.get('eu1')?.parent).toBe('global');
  });

  it('adds a DTN-only mars region when interplanetary', () => {
    const t = generateTopology({ regions: 1, hubs: 1, pods: 1, tiles: 2, interplanetary: true });
    expect(t.dtnRegions).toEqual(['mars']);
    expect(t.nodes.get('mars')?.parent).toBeUndefined();
    expect(t.dtnLinks[0]?.owltSec).toBeGreaterThan(60);
  });

  it('loads the example file', () => {
    const t = loadTopologyFile(new URL('../../examples/topology.yaml', import.meta.url).pathname);
    expect(t.nodes.get('eu1.h2.lab.t01')?.labels['sensor']).toBe('thermal');
  });

  it('names the bad field and its line', () => {
    const text = 'regions:\n  - name: eu1\n    hubs:\n      - pods:\n          - tiles: 0\n';
    try {
      parseTopology(text, 'bad.yaml');
      expect.unreachable();
    } catch (e) {
      expect(isGenesisError(e, 'TOPOLOGY_INVALID')).toBe(true);
      expect((e as Error).message).toMatch(
        /bad\.yaml:5: field "regions\.0\.hubs\.0\.pods\.0\.tiles"/,
      );
    }
  });

  it('rejects unknown fields, syntax errors and duplicate names', () => {
    expect(() => parseTopology('regions:\n  - name: eu1\n    hubz: []\n')).toThrow(/hubz|hubs/);
    expect(() => parseTopology('regions: [\n')).toThrow(/TOPOLOGY|:/);
    try {
      parseTopology(
        'regions:\n  - {name: eu1, hubs: [{pods: [{tiles: 1}]}]}\n  - {name: eu1, hubs: [{pods: [{tiles: 1}]}]}\n',
      );
      expect.unreachable();
    } catch (e) {
      expect(isGenesisError(e, 'TOPOLOGY_INVALID')).toBe(true);
    }
  });

  it('reports an unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'topo-'));
    writeFileSync(
      join(dir, 'ok.json'),
      JSON.stringify({ regions: [{ name: 'r1', hubs: [{ pods: [{ tiles: 2 }] }] }] }),
    );
    expect(countByLevel(loadTopologyFile(join(dir, 'ok.json'))).tile).toBe(2);
    try {
      loadTopologyFile(join(dir, 'missing.yaml'));
      expect.unreachable();
    } catch (e) {
      expect(isGenesisError(e, 'TOPOLOGY_FILE_UNREADABLE')).toBe(true);
    }
  });
});
