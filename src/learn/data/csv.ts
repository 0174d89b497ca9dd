/**
 * CSV loading so users bring their own data: a header row, numeric feature columns and a 0/1
 * label column (named `failure` by default, else the last column). RFC 4180 quoting is accepted
 * for header names; values must be plain numbers. Errors name the line and column.
 */
import { readFileSync, statSync } from 'node:fs';
import { LearnError, LearnErrorCode } from '../errors.ts';
import type { Dataset } from '../model/kernels.ts';

/** Largest CSV file read, in bytes. */
export const CSV_FILE_BYTES_MAX = 256 * 1024 * 1024;
/** Largest number of columns. */
export const CSV_COLUMNS_MAX = 10_000;

/** Options of {@link parseCsv}. */
export interface CsvOptions {
  /** Label column name; default `failure` when present, else the last column. */
  readonly labelColumn?: string;
}

/** A dataset with its feature names. */
export interface CsvDataset extends Dataset {
  readonly features: readonly string[];
}

function fail(message: string, details: Record<string, unknown>): never {
  throw new LearnError(LearnErrorCode.BadCsv, message, { details });
}

function splitHeader(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  out.push(cur.trim());
  return out;
}

/** Parses CSV text into a dataset. @throws {LearnError} `LEARN_BAD_CSV` */
export function parseCsv(text: string, options: CsvOptions = {}): CsvDataset {
  const lines = text.split(/\r?\n/);
  const header = splitHeader(lines[0] ?? '');
  if (header.length < 2 || header.some((h) => h === ''))
    fail('line 1: header needs at least two named columns', { line: 1 });
  if (header.length > CSV_COLUMNS_MAX)
    fail(`line 1: more than ${CSV_COLUMNS_MAX} columns`, { line: 1 });
  const wanted =
    options.labelColumn ??
    (header.includes('failure') ? 'failure' : (header[header.length - 1] as string));
  const labelIdx = header.indexOf(wanted);
  if (labelIdx < 0) fail(`label column "${wanted}" not in header`, { column: wanted });
  const d = header.length - 1;
  const rows: number[][] = [];
  for (let li = 1; li < lines.length; li++) {
    const line = lines[li] as string;
    if (line.trim() === '') continue;
    const cells = line.split(',');
    if (cells.length !== header.length)
      fail(`line ${li + 1}: ${cells.length} values, header has ${header.length}`, { line: li + 1 });
    const row = cells.map((c, ci) => {
      const t = c.trim();
      const v = t === '' ? Number.NaN : Number(t);
      if (!Number.isFinite(v))
        fail(`line ${li + 1}, column "${header[ci]}": "${t}" is not a finite number`, {
          line: li + 1,
          column: header[ci],
        });
      return v;
    });
    const label = row[labelIdx] as number;
    if (label !== 0 && label !== 1)
      fail(`line ${li + 1}: label "${label}" must be 0 or 1`, { line: li + 1 });
    rows.push(row);
  }
  const x = new Float32Array(rows.length * d);
  const y = new Float32Array(rows.length);
  rows.forEach((row, r) => {
    let k = 0;
    for (let c = 0; c < row.length; c++) {
      if (c === labelIdx) y[r] = row[c] as number;
      else x[r * d + k++] = row[c] as number;
    }
  });
  return { n: rows.length, d, x, y, features: header.filter((_, i) => i !== labelIdx) };
}

/** Reads and parses a CSV file. @throws {LearnError} `LEARN_BAD_CSV` */
export function loadCsv(path: string, options: CsvOptions = {}): CsvDataset {
  let text = '';
  try {
    const size = statSync(path).size;
    if (size > CSV_FILE_BYTES_MAX)
      fail(`${path}: ${size} bytes exceeds CSV_FILE_BYTES_MAX (${CSV_FILE_BYTES_MAX})`, {
        path,
        size,
      });
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof LearnError) throw e;
    throw new LearnError(LearnErrorCode.BadCsv, `cannot read ${path}: ${(e as Error).message}`, {
      cause: e,
      details: { path },
    });
  }
  return parseCsv(text, options);
}

/** Writes a dataset as CSV (features, then `failure`). */
export function datasetToCsv(data: Dataset, features: readonly string[]): string {
  const lines = [[...features, 'failure'].join(',')];
  for (let r = 0; r < data.n; r++) {
    const row: string[] = [];
    for (let c = 0; c < data.d; c++) row.push(String(data.x[r * data.d + c]));
    row.push(String(data.y[r]));
    lines.push(row.join(','));
  }
  return `${lines.join('\n')}\n`;
}
