import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  concatDatasets,
  type Dataset,
  datasetToCsv,
  deserializeModel,
  evaluate,
  generateTileData,
  initParams,
  isLearnError,
  logisticRegression,
  lossAndGradient,
  type ModelSpec,
  mlp,
  PDM_FEATURES,
  paramCount,
  parseCsv,
  serializeModel,
  TrainPool,
  tileRegime,
  trainLocal,
} from '../../src/learn/index.ts';

function tiny(rng: SeededRng, n: number, d: number): Dataset {
  const x = new Float32Array(n * d).map(() => rng.nextFloat() * 2 - 1);
  const y = new Float32Array(n).map((_, i) =>
    (x[i * d] as number) + 0.5 * (x[i * d + 1] as number) > 0 ? 1 : 0,
  );
  return { n, d, x, y };
}

describe('models', () => {
  it('counts parameters of logreg and MLPs', () => {
    expect(paramCount(logisticRegression(12))).toBe(13);
    expect(paramCount(mlp(12, 16, 2))).toBe(12 * 16 + 16 + 16 * 16 + 16 + 16 + 1);
  });

  it('backpropagation matches central finite differences', () => {
    for (const spec of [
      logisticRegression(5),
      mlp(5, 7, 2, 'tanh'),
      mlp(5, 6, 1, 'relu'),
    ] as ModelSpec[]) {
      const rng = new SeededRng(7);
      const data = tiny(rng, 9, 5);
      const p = initParams(spec, rng);
      const g = new Float32Array(p.length);
      lossAndGradient(spec, p, data, 0, data.n, g);
      const p64 = Float32Array.from(p);
      const scratch = new Float32Array(p.length);
      for (let i = 0; i < p.length; i += Math.max(1, Math.floor(p.length / 25))) {
        const h = 1e-3;
        p64[i] = (p[i] as number) + h;
        const up = lossAndGradient(spec, p64, data, 0, data.n, scratch);
        p64[i] = (p[i] as number) - h;
        const down = lossAndGradient(spec, p64, data, 0, data.n, scratch);
        p64[i] = p[i] as number;
        const numeric = (up - down) / (2 * h);
        expect(Math.abs(numeric - (g[i] as number))).toBeLessThan(3e-3 + 0.05 * Math.abs(numeric));
      }
    }
  });

  it('SGD+momentum and Adam both learn a separable problem', () => {
    const rng = new SeededRng(3);
    const data = tiny(rng, 400, 4);
    const spec = mlp(4, 8, 1);
    const p = initParams(spec, rng);
    for (const optimizer of [
      { kind: 'sgd', lr: 0.2, momentum: 0.9 },
      { kind: 'adam', lr: 0.02 },
    ] as const) {
      const r = trainLocal({
        spec,
        params: p,
        data,
        optimizer,
        localSteps: 400,
        batchSize: 32,
        seed: 1,
      });
      expect(evaluate(spec, r.params, data).accuracy).toBeGreaterThan(0.95);
      expect(evaluate(spec, r.params, data).loss).toBeLessThan(evaluate(spec, p, data).loss);
    }
  });

  it('FedProx term pulls local weights towards the global model', () => {
    const rng = new SeededRng(4);
    const data = tiny(rng, 200, 4);
    const spec = logisticRegression(4);
    const p = initParams(spec, rng);
    const dist = (a: Float32Array): number =>
      Math.hypot(...Array.from(a, (v, i) => v - (p[i] as number)));
    const base = {
      spec,
      params: p,
      data,
      optimizer: { kind: 'sgd', lr: 0.1 } as const,
      localSteps: 200,
      batchSize: 16,
      seed: 2,
    };
    expect(dist(trainLocal({ ...base, proximalMu: 1 }).params)).toBeLessThan(
      dist(trainLocal(base).params),
    );
  });

  it('serialises and parses models exactly; rejects corruption', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer(),
        (inputs, width, depth, seed) => {
          const spec = depth === 0 ? logisticRegression(inputs) : mlp(inputs, width, depth);
          const params = initParams(spec, new SeededRng(seed));
          const back = deserializeModel(serializeModel({ spec, params }));
          expect(back.spec).toEqual(spec);
          expect(Array.from(back.params)).toEqual(Array.from(params));
        },
      ),
      { numRuns: 50 },
    );
    const bytes = serializeModel({ spec: logisticRegression(3), params: new Float32Array(4) });
    expect(() => deserializeModel(bytes.subarray(0, bytes.length - 1))).toThrow(
      /expected 4 parameters/,
    );
    bytes[0] = 0;
    let caught: unknown;
    try {
      deserializeModel(bytes);
    } catch (e) {
      caught = e;
    }
    expect(isLearnError(caught, 'LEARN_MALFORMED')).toBe(true);
  });

  it('the worker pool trains to the same bytes as the main thread', async () => {
    const rng = new SeededRng(5);
    const spec = mlp(4, 8, 1);
    const task = {
      spec,
      params: initParams(spec, rng),
      data: tiny(rng, 100, 4),
      optimizer: { kind: 'adam', lr: 0.01 } as const,
      localSteps: 50,
      batchSize: 10,
      seed: 9,
    };
    const pool = new TrainPool(2);
    try {
      const results = await Promise.all([
        pool.run(task),
        pool.run(task),
        pool.run({ ...task, seed: 10 }),
      ]);
      const inline = trainLocal(task);
      expect(Array.from(results[0]?.params ?? [])).toEqual(Array.from(inline.params));
      expect(Array.from(results[1]?.params ?? [])).toEqual(Array.from(inline.params));
      expect(Array.from(results[2]?.params ?? [])).not.toEqual(Array.from(inline.params));
      await expect(pool.run({ ...task, batchSize: 0 })).rejects.toMatchObject({
        code: 'LEARN_BAD_CONFIG',
      });
    } finally {
      await pool.close();
    }
  });
});

describe('predictive-maintenance data', () => {
  it('is deterministic per (seed, tile) and differs across tiles (non-IID)', () => {
    const a = generateTileData({ seed: 1, tile: 'eu1.h1.p1.t01', windows: 300 });
    const b = generateTileData({ seed: 1, tile: 'eu1.h1.p1.t01', windows: 300 });
    expect(Array.from(a.x)).toEqual(Array.from(b.x));
    expect(a.d).toBe(PDM_FEATURES.length);
    const rates = Array.from({ length: 30 }, (_, i) => tileRegime(1, i).failureRate);
    expect(Math.max(...rates) - Math.min(...rates)).toBeGreaterThan(0.1);
    const ambient = Array.from({ length: 30 }, (_, i) => tileRegime(1, i).ambientC);
    expect(Math.max(...ambient) - Math.min(...ambient)).toBeGreaterThan(15);
  });

  it('failure windows are learnable but not trivially separable', () => {
    const train = concatDatasets(
      Array.from({ length: 10 }, (_, i) => generateTileData({ seed: 2, tile: i, windows: 200 })),
    );
    const test = concatDatasets(
      Array.from({ length: 5 }, (_, i) =>
        generateTileData({ seed: 2, tile: 50 + i, windows: 200 }),
      ),
    );
    const spec = logisticRegression(PDM_FEATURES.length);
    const p0 = initParams(spec, new SeededRng(1));
    const r = trainLocal({
      spec,
      params: p0,
      data: train,
      optimizer: { kind: 'adam', lr: 0.01 },
      localSteps: 800,
      batchSize: 32,
      seed: 1,
    });
    let positives = 0;
    for (let i = 0; i < test.n; i++) positives += test.y[i] as number;
    const majority = Math.max(positives, test.n - positives) / test.n;
    const acc = evaluate(spec, r.params, test).accuracy;
    expect(acc).toBeGreaterThan(majority + 0.03);
    expect(acc).toBeLessThan(0.995);
  });

  it('CSV round-trips and reports bad lines', () => {
    const d = generateTileData({ seed: 3, tile: 'x', windows: 20 });
    const parsed = parseCsv(datasetToCsv(d, PDM_FEATURES));
    expect(parsed.n).toBe(20);
    expect(parsed.features).toEqual([...PDM_FEATURES]);
    expect(Array.from(parsed.x)).toEqual(Array.from(d.x));
    expect(Array.from(parsed.y)).toEqual(Array.from(d.y));
    const cases: [string, RegExp][] = [
      ['a,b,failure\n1,2,0\n1,x,1\n', /line 3, column "b"/],
      ['a,b,failure\n1,2\n', /line 2: 2 values/],
      ['a,b,failure\n1,2,3\n', /must be 0 or 1/],
      ['a\n1\n', /header/],
    ];
    for (const [text, msg] of cases) {
      let caught: unknown;
      try {
        parseCsv(text);
      } catch (e) {
        caught = e;
      }
      expect(isLearnError(caught, 'LEARN_BAD_CSV')).toBe(true);
      expect(String((caught as Error).message)).toMatch(msg);
    }
    expect(parseCsv('"temp, C",failure\n1.5,1\n').features).toEqual(['temp, C']);
  });
});
