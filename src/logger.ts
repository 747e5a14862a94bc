/**
 * Structured JSON logs (pino). Every line passes through a filter that replaces the values of
 * configured secrets, so a key can never reach the logs even inside an error message.
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export type { Logger };

export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s && out.includes(s)) out = out.split(s).join('[redacted]');
  return out;
}

export function createLogger(opts: { level: string; secrets: readonly string[]; destination?: NodeJS.WritableStream; base?: Record<string, unknown> }): Logger {
  const dest = opts.destination ?? process.stdout;
  const filtered = new Writable({
    write(chunk, _enc, cb) {
      dest.write(redactSecrets(chunk.toString(), opts.secrets));
      cb();
    },
  });
  return pino({ level: opts.level, base: opts.base ?? { service: 'aiopslab-executor' }, timestamp: pino.stdTimeFunctions.isoTime }, filtered);
}
