/**
 * Turns AIOpsLab's raw stdout/stderr bytes into log lines: UTF-8 decoded across chunk boundaries,
 * ANSI escape sequences removed, carriage-return redraws (rich spinners, progress bars) reduced to
 * what a terminal would finally show, blank lines dropped, very long lines cut into pieces.
 */
import { StringDecoder } from 'node:string_decoder';

// CSI (colours, cursor moves), OSC (titles, hyperlinks), and two-byte escapes.
const ANSI_PATTERN = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
// Other control characters except tab.
const CONTROL_PATTERN = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

export const MAX_LINE_CHARS = 16_384;

export function stripAnsi(text: string): string {
  return text.replace(ANSI_PATTERN, '');
}

/** The text a terminal would show for one line that may contain `\r` redraws. */
export function visibleLine(raw: string): string {
  const segments = raw.replace(/\r+$/, '').split('\r').map((s) => stripAnsi(s).replace(CONTROL_PATTERN, ''));
  for (let i = segments.length - 1; i >= 0; i--) if (segments[i]!.trim() !== '') return segments[i]!.trimEnd();
  return '';
}

export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly onLine: (line: string) => void, private readonly maxChars = MAX_LINE_CHARS) {}

  push(chunk: Buffer | string): void {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) !== -1) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      this.emit(line);
    }
    // A line that never ends (a progress bar without newlines) must not grow without bound.
    if (this.pending.length > this.maxChars * 4) {
      this.emit(this.pending);
      this.pending = '';
    }
  }

  end(): void {
    this.pending += this.decoder.end();
    if (this.pending) this.emit(this.pending);
    this.pending = '';
  }

  private emit(raw: string): void {
    const line = visibleLine(raw);
    if (line === '') return;
    for (let i = 0; i < line.length; i += this.maxChars) this.onLine(line.slice(i, i + this.maxChars));
  }
}
