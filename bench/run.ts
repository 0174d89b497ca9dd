/**
 * `npm run bench [-- FILTER] [--json]`: runs every `bench/<layer>/*.bench.ts` whose case name
 * contains FILTER and prints a table (or JSON lines with `--json`).
 */
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchCase, BenchRow } from './harness.ts';

const root = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes('--json');
const filters = args.filter((a) => !a.startsWith('--'));

function findBenchFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? findBenchFiles(join(dir, e.name))
        : e.name.endsWith('.bench.ts')
          ? [join(dir, e.name)]
          : [],
    )
    .sort();
}

function printRow(r: BenchRow): void {
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ bench: r.bench, value: r.value, unit: r.unit, baseline: r.baseline, baselineValue: r.baselineValue, ratio: r.ratio })}\n`,
    );
    return;
  }
  const target = r.target === undefined ? '' : `  target: ${r.target}`;
  process.stdout.write(
    `${r.bench.padEnd(58)} ${String(r.value).padStart(14)} ${r.unit.padEnd(10)} vs ${r.baseline} ${r.baselineValue} → ratio ${r.ratio}${target}\n`,
  );
}

let failures = 0;
for (const file of findBenchFiles(root)) {
  const mod = (await import(pathToFileURL(file).href)) as { default: BenchCase[] };
  for (const c of mod.default) {
    const id = `${relative(root, file)}:${c.name}`;
    if (filters.length > 0 && !filters.some((f) => id.includes(f))) continue;
    if (!json) process.stderr.write(`# ${id}\n`);
    try {
      for (const r of await c.run()) printRow(r);
    } catch (e) {
      failures++;
      process.stderr.write(
        `bench ${id} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
      );
    }
  }
}
process.exitCode = failures > 0 ? 1 : 0;
