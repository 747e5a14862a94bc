/** Number, time and money formatting, tolerant of missing values (shown as an en dash). */

export const DASH = '–';

export function fmtInt(n: number | null | undefined): string {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : DASH;
}

/** 1234 -> 1.2k, 3400000 -> 3.4M: compact enough for chart axes and dense tables. */
export function fmtCompact(n: number | null | undefined): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return DASH;
  const a = Math.abs(n);
  if (a >= 1e9) return `${trim(n / 1e9)}B`;
  if (a >= 1e6) return `${trim(n / 1e6)}M`;
  if (a >= 1e3) return `${trim(n / 1e3)}k`;
  return trim(n);
}

/** Up to 3 significant digits, without trailing decimal zeros (12.50 -> 12.5, 200 stays 200). */
function trim(n: number): string {
  const s = Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** Dollars with enough digits to tell small LLM costs apart ($0.000123). */
export function fmtUsd(n: number | string | null | undefined): string {
  const v = typeof n === 'string' ? Number(n) : n;
  if (typeof v !== 'number' || !Number.isFinite(v)) return DASH;
  if (v === 0) return '$0';
  const a = Math.abs(v);
  if (a >= 100) return `$${v.toFixed(0)}`;
  if (a >= 1) return `$${v.toFixed(2)}`;
  if (a >= 0.01) return `$${v.toFixed(4)}`;
  return `$${v.toPrecision(2)}`;
}

/** A USD-per-token price as USD per million tokens, the unit providers quote. */
export function fmtPerMillion(perToken: number | string | null | undefined): string {
  const v = typeof perToken === 'string' ? Number(perToken) : perToken;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return DASH;
  const m = v * 1e6;
  return m === 0 ? 'free' : `$${m >= 1 ? m.toFixed(2) : m.toFixed(3)}`;
}

export function fmtPercent(r: number | null | undefined, digits = 0): string {
  return typeof r === 'number' && Number.isFinite(r) ? `${(r * 100).toFixed(digits)}%` : DASH;
}

export function fmtDuration(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function durationBetween(from: string | null | undefined, to: string | number | null | undefined): number | null {
  if (!from || to === null || to === undefined) return null;
  const a = Date.parse(from);
  const b = typeof to === 'number' ? to : Date.parse(to);
  return Number.isFinite(a) && Number.isFinite(b) ? Math.max(0, b - a) : null;
}

export function fmtAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return DASH;
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return DASH;
  return agoFromSeconds((now - t) / 1000);
}

export function agoFromSeconds(s: number): string {
  if (!Number.isFinite(s)) return DASH;
  if (s < 5) return 'just now';
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtDateTime(iso: string | null | undefined): string {
  if (!iso) return DASH;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return DASH;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return DASH;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? DASH : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : DASH;
}

export function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/** A parsed AIOpsLab call as it would be written: exec_shell("kubectl get pods"). */
export function fmtCall(api: string, args: unknown[] | null | undefined, kwargs: Record<string, unknown> | null | undefined): string {
  const parts = [...(args ?? []).map((a) => JSON.stringify(a)), ...Object.entries(kwargs ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`)];
  return `${api}(${parts.join(', ')})`;
}

/** The viewer's IANA time zone, so "today" in spend totals is the viewer's day. */
export function viewerTimeZone(): string {
  try {
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    return tz && /^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(tz) ? tz : 'UTC';
  } catch {
    return 'UTC';
  }
}
