/**
 * What the client commands print for people: tables, colours, a spinner, wrapped text and
 * human units. Colours and the spinner only appear when stdout is a terminal and NO_COLOR is
 * unset, so pipes, files and CI logs get plain, stable text.
 */

export interface OutputStyle { color: boolean; spinner: boolean; width: number }

export function detectStyle(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): OutputStyle {
  const tty = stream.isTTY === true;
  const fancy = tty && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb';
  // Off a terminal, 100 columns keeps wrapped transcripts readable in files and pagers.
  return { color: fancy, spinner: fancy, width: tty && stream.columns ? stream.columns : 100 };
}

const CODES = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], blue: [34, 39], magenta: [35, 39], cyan: [36, 39], gray: [90, 39] } as const;
export type Colour = keyof typeof CODES;

export function paint(style: OutputStyle, colour: Colour, text: string): string {
  if (!style.color) return text;
  const [a, b] = CODES[colour];
  return `\u001b[${a}m${text}\u001b[${b}m`;
}

const ANSI = /\u001b\[[0-9;]*m/g;
export function visibleLength(s: string): number {
  return [...s.replace(ANSI, '')].length;
}

const STATUS_COLOURS: Record<string, Colour> = {
  completed: 'green', failed: 'red', timeout: 'red', cancelled: 'yellow', running: 'cyan', pending: 'gray',
  idle: 'green', busy: 'cyan', offline: 'gray', error: 'red', critical: 'red', warning: 'yellow', debug: 'gray',
};
export function paintStatus(style: OutputStyle, status: string): string {
  const c = STATUS_COLOURS[status];
  return c ? paint(style, c, status) : status;
}

export interface Column<R> {
  header: string;
  value(row: R): string;
  align?: 'left' | 'right';
  /** Cells longer than this are cut with "…" (the widest flexible column also shrinks to fit a terminal). */
  max?: number;
  /** May shrink when the table is wider than the terminal. */
  flexible?: boolean;
  colour?(row: R, text: string): string;
}

function cut(s: string, n: number): string {
  const chars = [...s];
  return chars.length <= n ? s : `${chars.slice(0, Math.max(1, n - 1)).join('')}…`;
}

/** A plain, space-aligned table; colours are applied after padding so widths stay right. */
export function renderTable<R>(rows: R[], columns: Column<R>[], style: OutputStyle): string {
  const cells = rows.map((r) => columns.map((c) => {
    const v = c.value(r).replace(/\s+/g, ' ');
    return c.max ? cut(v, c.max) : v;
  }));
  const widths = columns.map((c, i) => Math.max(visibleLength(c.header), ...cells.map((row) => visibleLength(row[i]!))));
  if (style.spinner) {
    // Only on a terminal: shrink flexible columns so lines do not wrap.
    let total = widths.reduce((a, b) => a + b, 0) + 2 * (columns.length - 1);
    for (let i = columns.length - 1; i >= 0 && total > style.width; i--) {
      if (!columns[i]!.flexible) continue;
      const shrink = Math.min(total - style.width, widths[i]! - Math.max(8, visibleLength(columns[i]!.header)));
      if (shrink > 0) { widths[i]! -= shrink; total -= shrink; }
    }
  }
  const line = (vals: string[], header: boolean, row?: R) => vals.map((v, i) => {
    const c = columns[i]!;
    const text = cut(v, widths[i]!);
    const pad = ' '.repeat(Math.max(0, widths[i]! - visibleLength(text)));
    const shown = header ? paint(style, 'bold', text) : c.colour && row !== undefined ? c.colour(row, text) : text;
    const last = i === vals.length - 1;
    return c.align === 'right' ? pad + shown : last ? shown : shown + pad;
  }).join('  ');
  return [line(columns.map((c) => c.header), true), ...cells.map((r, i) => line(r, false, rows[i]))].join('\n') + '\n';
}

/** `label  value` lines with the labels aligned. */
export function renderFields(pairs: Array<[string, string | null | undefined]>, style: OutputStyle): string {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== null && p[1] !== undefined && p[1] !== '');
  const w = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${paint(style, 'dim', `${k}:`.padEnd(w + 1))} ${v}`).join('\n') + '\n';
}

/** Wraps at `width`, keeping existing line breaks and breaking words longer than a line. */
export function wrapText(text: string, width: number, indent = ''): string {
  const room = Math.max(20, width - indent.length);
  const out: string[] = [];
  for (const para of text.replace(/\r\n?/g, '\n').split('\n')) {
    if (para === '') { out.push(indent.trimEnd()); continue; }
    let cur = '';
    for (const word of para.split(/(\s+)/)) {
      if (word === '') continue;
      if ([...cur].length + [...word].length <= room) { cur += word; continue; }
      if (cur.trim()) out.push(indent + cur.trimEnd());
      cur = /^\s+$/.test(word) ? '' : word;
      while ([...cur].length > room) {
        out.push(indent + [...cur].slice(0, room).join(''));
        cur = [...cur].slice(room).join('');
      }
    }
    out.push(indent + cur.trimEnd());
  }
  return out.join('\n');
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** "3m ago" from an ISO timestamp. */
export function formatAge(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '-';
  return `${formatDuration(Math.max(0, (now - t) / 1000))} ago`;
}

export function secondsBetween(from: string | null | undefined, to: string | null | undefined, now = Date.now()): number | null {
  if (!from) return null;
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : now;
  return Number.isFinite(a) && Number.isFinite(b) ? Math.max(0, (b - a) / 1000) : null;
}

export function formatCost(usd: unknown): string {
  if (typeof usd !== 'number' || !Number.isFinite(usd)) return '-';
  if (usd === 0) return '$0';
  return usd < 0.01 ? `$${usd.toFixed(6)}` : `$${usd.toFixed(4)}`;
}

export function formatInt(n: unknown): string {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function formatClock(iso: string | null | undefined): string {
  return formatTime(iso).slice(11) || '-';
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface Spinner {
  /** Replaces the text next to the spinner. */
  update(text: string): void;
  /** Prints a line above the spinner (the spinner line is cleared and redrawn). */
  log(line: string): void;
  stop(): void;
}

/** A one-line spinner on `stream`; without style.spinner it only passes `log` lines through. */
export function createSpinner(style: OutputStyle, stream: NodeJS.WritableStream = process.stdout): Spinner {
  if (!style.spinner) {
    return { update() {}, log(line) { stream.write(`${line}\n`); }, stop() {} };
  }
  let text = '';
  let frame = 0;
  let drawn = false;
  const clear = () => { if (drawn) stream.write('\r\u001b[2K'); drawn = false; };
  const draw = () => {
    clear();
    if (!text) return;
    stream.write(`${paint(style, 'cyan', FRAMES[frame % FRAMES.length]!)} ${cut(text, Math.max(10, style.width - 3))}`);
    drawn = true;
  };
  const timer = setInterval(() => { frame++; draw(); }, 100);
  timer.unref();
  return {
    update(t) { text = t; draw(); },
    log(line) { clear(); stream.write(`${line}\n`); draw(); },
    stop() { clearInterval(timer); clear(); },
  };
}
