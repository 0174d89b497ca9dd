/**
 * Simulation reports: the JSON report and a hand-rendered SVG chart of accuracy (left axis,
 * 0–1) and ε spent (right axis) per round. No plotting library: the chart is a few polylines,
 * so it renders the same in any browser and diffs cleanly.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SimulationReport } from './simulate.ts';

const W = 720;
const H = 360;
const PAD = { left: 56, right: 64, top: 40, bottom: 48 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Renders the accuracy/ε chart of a report as a standalone SVG document. */
export function renderReportSvg(r: SimulationReport): string {
  const rounds = r.rounds;
  const n = Math.max(1, rounds.length);
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const x = (i: number): number => PAD.left + (n === 1 ? pw / 2 : (i / (n - 1)) * pw);
  const epsMax = Math.max(1e-9, ...rounds.map((q) => q.epsilon));
  const yAcc = (a: number): number => PAD.top + (1 - a) * ph;
  const yEps = (e: number): number => PAD.top + (1 - e / epsMax) * ph;
  const acc = rounds.map((q, i) => `${x(i).toFixed(1)},${yAcc(q.accuracy).toFixed(1)}`).join(' ');
  const eps = rounds.map((q, i) => `${x(i).toFixed(1)},${yEps(q.epsilon).toFixed(1)}`).join(' ');
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  const c = r.config;
  const title = `${c.strategy}, ${c.clients} clients, secagg ${c.secagg}${c.dp === undefined ? '' : `, DP ε≤${(c.dp.budget ?? c.dp.epsilon ?? r.epsilon).toFixed(2)} δ=${c.dp.delta}`} — ${r.stopped}`;
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (let k = 0; k <= 5; k++) {
    const a = k / 5;
    const y = yAcc(a);
    parts.push(
      `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
    );
    parts.push(
      `<text x="${PAD.left - 6}" y="${y + 4}" text-anchor="end" fill="#1f77b4">${a.toFixed(1)}</text>`,
    );
    if (r.config.dp !== undefined)
      parts.push(
        `<text x="${W - PAD.right + 6}" y="${y + 4}" fill="#d62728">${(a * epsMax).toFixed(2)}</text>`,
      );
  }
  const ticks = Math.min(n, 10);
  for (let k = 0; k < ticks; k++) {
    const i = ticks === 1 ? 0 : Math.round((k / (ticks - 1)) * (n - 1));
    parts.push(
      `<text x="${x(i)}" y="${H - PAD.bottom + 18}" text-anchor="middle">${rounds[i]?.round ?? i + 1}</text>`,
    );
  }
  parts.push(`<text x="${W / 2}" y="${H - 10}" text-anchor="middle">round</text>`);
  parts.push(
    `<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle" fill="#1f77b4">test accuracy</text>`,
  );
  if (r.config.dp !== undefined)
    parts.push(
      `<text x="${W - 14}" y="${H / 2}" transform="rotate(90 ${W - 14} ${H / 2})" text-anchor="middle" fill="#d62728">ε spent (δ=${r.delta})</text>`,
    );
  parts.push(
    `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${yAcc(r.baselineAccuracy)}" y2="${yAcc(r.baselineAccuracy)}" stroke="#1f77b4" stroke-dasharray="4 4" opacity="0.5"/>`,
  );
  parts.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${acc}"/>`);
  if (r.config.dp !== undefined)
    parts.push(`<polyline fill="none" stroke="#d62728" stroke-width="2" points="${eps}"/>`);
  for (const [i, q] of rounds.entries())
    if (q.failure !== undefined)
      parts.push(
        `<circle cx="${x(i)}" cy="${yAcc(q.accuracy)}" r="4" fill="none" stroke="black"><title>${esc(q.failure)}</title></circle>`,
      );
  parts.push(
    `<rect x="${PAD.left + 8}" y="${PAD.top + 6}" width="250" height="${r.config.dp === undefined ? 40 : 56}" fill="white" stroke="#ccc"/>`,
  );
  parts.push(
    `<line x1="${PAD.left + 16}" x2="${PAD.left + 40}" y1="${PAD.top + 20}" y2="${PAD.top + 20}" stroke="#1f77b4" stroke-width="2"/><text x="${PAD.left + 46}" y="${PAD.top + 24}">accuracy (final ${r.finalAccuracy.toFixed(3)})</text>`,
  );
  parts.push(
    `<line x1="${PAD.left + 16}" x2="${PAD.left + 40}" y1="${PAD.top + 36}" y2="${PAD.top + 36}" stroke="#1f77b4" stroke-dasharray="4 4"/><text x="${PAD.left + 46}" y="${PAD.top + 40}">untrained model (${r.baselineAccuracy.toFixed(3)})</text>`,
  );
  if (r.config.dp !== undefined)
    parts.push(
      `<line x1="${PAD.left + 16}" x2="${PAD.left + 40}" y1="${PAD.top + 52}" y2="${PAD.top + 52}" stroke="#d62728" stroke-width="2"/><text x="${PAD.left + 46}" y="${PAD.top + 56}">ε spent (final ${r.epsilon.toFixed(3)}, z=${r.noiseMultiplier.toFixed(3)})</text>`,
    );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Writes `report.json` and `report.svg` into `dir`; returns their paths. */
export function writeReport(r: SimulationReport, dir: string): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const svg = join(dir, 'report.svg');
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(svg, renderReportSvg(r));
  return { json, svg };
}
