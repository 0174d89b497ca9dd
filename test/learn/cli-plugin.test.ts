import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { register, simulationConfigFromFlags } from '../../src/cli/commands/learn.ts';
import { learnPlugin } from '../../src/cli/plugins/learn.ts';
import { EmbeddedFabric, generateTopology, SeededRng, SystemClock } from '../../src/core/index.ts';
import { defaultConfig, renderReportSvg, runSimulation } from '../../src/learn/index.ts';

const flags = {
  clients: '50',
  rounds: '3',
  strategy: 'fedavg',
  secagg: 'off',
  dpDelta: '1e-5',
  clip: '1',
  deadline: '1s',
  localSteps: '5',
  dropout: '0',
  byzantine: '0',
  attack: 'sign-flip',
  model: 'mlp',
  width: '8',
  depth: '1',
  seed: '1',
  workers: '0',
  out: 'x',
};

describe('genesis learn: flags', () => {
  it('maps flags to a configuration, DP placement following --secagg', () => {
    const c = simulationConfigFromFlags({ ...flags, secagg: 'plus', dpEpsilon: '3' });
    expect(c.clients).toBe(50);
    expect(c.dp?.epsilon).toBe(3);
    expect(c.dp?.placement).toBe('distributed');
    expect(simulationConfigFromFlags({ ...flags, dpEpsilon: '3' }).dp?.placement).toBe('central');
    // Hierarchical runs noise once at the global node: central by default even with SecAgg.
    expect(
      simulationConfigFromFlags({ ...flags, secagg: 'plus', dpEpsilon: '3', hierarchy: 'pod,hub' })
        .dp?.placement,
    ).toBe('central');
    expect(simulationConfigFromFlags({ ...flags, depth: '0' }).model.kind).toBe('logreg');
  });

  it.each([
    [{ clients: '0' }, /--clients/],
    [{ strategy: 'fedfoo' }, /--strategy/],
    [{ secagg: 'maybe' }, /--secagg/],
    [{ dpEpsilon: '-1' }, /--dp-epsilon/],
    [{ dropout: '1.5' }, /--dropout/],
  ])('rejects %o with one clear line (CLI_* code)', (bad, msg) => {
    let caught: unknown;
    try {
      simulationConfigFromFlags({ ...flags, ...bad });
    } catch (e) {
      caught = e;
    }
    expect(String((caught as Error).message)).toMatch(msg);
    expect((caught as { code: string }).code).toMatch(/^CLI_/);
  });
});

describe('genesis learn accountant', () => {
  let out = '';
  beforeEach(() => {
    out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out += String(s);
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('prints the published TF Privacy ε and a calibrated σ', async () => {
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync(
      [
        'learn',
        'accountant',
        '--q',
        '0.0025',
        '--sigma',
        '1.3',
        '--steps',
        '6000',
        '--orders',
        'tf',
        '--json',
      ],
      { from: 'user' },
    );
    const r = JSON.parse(out.trim()) as { epsilon: number; order: number };
    expect(Math.abs(r.epsilon - 0.7242234026109595) / 0.7242234026109595).toBeLessThan(1e-9);
    out = '';
    await program.parseAsync(
      [
        'learn',
        'accountant',
        '--q',
        '0.0025',
        '--epsilon',
        '0.7242234026109595',
        '--steps',
        '6000',
        '--orders',
        'tf',
        '--json',
      ],
      { from: 'user' },
    );
    expect(Math.abs((JSON.parse(out.trim()) as { sigma: number }).sigma - 1.3)).toBeLessThan(1e-6);
  });
});

describe('report and genesis up plugin', () => {
  it('the SVG chart has an accuracy and an ε polyline with one point per round', async () => {
    const r = await runSimulation({
      ...defaultConfig(20, 3),
      windowsPerClient: 16,
      testWindows: 100,
      localSteps: 2,
      dp: {
        noiseMultiplier: 1,
        delta: 1e-5,
        clipNorm: 1,
        adaptiveClipping: false,
        placement: 'central',
      },
    });
    const svg = renderReportSvg(r);
    const lines = [...svg.matchAll(/<polyline[^>]*points="([^"]*)"/g)].map(
      (m) => (m[1] ?? '').split(' ').length,
    );
    expect(lines).toEqual([3, 3]);
    expect(svg).toMatch(/ε spent/);
  });

  it('attaches without work before start, trains in the background, stops cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'learn-up-'));
    const fabric = new EmbeddedFabric({
      topology: generateTopology({ regions: 1, hubs: 1, pods: 2, tiles: 3 }),
      clock: new SystemClock(),
      rng: new SeededRng(3),
      heartbeatIntervalMs: 60_000,
    });
    const plugin = learnPlugin({ dataDir: dir, interplanetary: false, verbose: false });
    try {
      await plugin.attach(fabric, { dataDir: dir, interplanetary: false, verbose: false });
      expect(plugin.status()).toMatchObject({ round: 0 });
      await fabric.start();
      await plugin.afterStart?.(fabric);
      const t0 = Date.now();
      while ((plugin.status().round as number) < 2 && Date.now() - t0 < 20_000)
        await new Promise((r) => setTimeout(r, 100));
      const s = plugin.status();
      expect(s.round as number).toBeGreaterThanOrEqual(2);
      expect(s.acc as number).toBeGreaterThan(0.5);
      expect(s.eps as number).toBeGreaterThan(0);
      await plugin.stop?.();
      const frozen = plugin.status().round;
      await new Promise((r) => setTimeout(r, 2_500));
      expect(plugin.status().round).toBe(frozen);
    } finally {
      await fabric.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);
});
