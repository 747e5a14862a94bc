/** The readable summary printed after a run: goals first, then each benchmark's figures. */
import type { BenchResult } from './benchResult.js';

export interface Report {
  generated_at: string;
  mode: string;
  duration_s: number;
  machine: Record<string, unknown>;
  results: BenchResult[];
  failures: Array<{ id: string; error: string }>;
}

function isSummary(v: unknown): v is { n: number; p50: number; p90: number; p99: number; max: number } {
  return !!v && typeof v === 'object' && 'p50' in v && 'p99' in v && 'n' in v;
}

function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function dataLines(data: Record<string, unknown>, indent: string): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(data)) {
    if (isSummary(v)) out.push(`${indent}${k}: p50 ${fmt(v.p50)}  p90 ${fmt(v.p90)}  p99 ${fmt(v.p99)}  max ${fmt(v.max)}  (n=${v.n})`);
    else if (v && typeof v === 'object' && !Array.isArray(v)) out.push(`${indent}${k}:`, ...dataLines(v as Record<string, unknown>, `${indent}  `));
    else out.push(`${indent}${k}: ${fmt(v)}`);
  }
  return out;
}

export function formatSummary(r: Report): string {
  const m = r.machine;
  const lines = [
    '',
    `Benchmarks (${r.mode}) — ${r.generated_at}, ${r.duration_s} s`,
    `Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memory_gb} GB, Node ${m.node}, PostgreSQL ${m.postgres} (${m.postgres_server}), load ${fmt(m.load_average_at_end)}`,
    '',
    'Goals',
  ];
  for (const res of r.results) {
    for (const g of res.goals) lines.push(`  ${g.met === null ? '·' : g.met ? '✔' : '✖'} ${res.id}: ${g.goal} — ${g.measured}`);
  }
  for (const f of r.failures) lines.push(`  ✖ ${f.id}: FAILED — ${f.error.split('\n')[0]}`);
  for (const res of r.results) {
    lines.push('', `${res.title} [${res.id}]`, `  ${res.measures}`, ...dataLines(res.data, '  '));
    for (const n of res.notes) lines.push(`  note: ${n}`);
  }
  return `${lines.join('\n')}\n`;
}
