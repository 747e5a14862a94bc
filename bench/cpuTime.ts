/**
 * CPU time spent by this process and by the database server, so a throughput figure can be split
 * into where its time went (bench/RESULTS.md, round 5). The server's share is read from /proc, so
 * only for a server on this host (the embedded one, or a local DATABASE_URL); elsewhere it is null.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Pool } from '../src/store/pool.js';

let ticksPerSecond: number | null = null;
function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/<pid>/stat after the command name: [ppid, utime, stime, cutime, cstime], or null. */
function procStat(pid: number | string): [number, number, number, number, number] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; the fields follow its last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return [Number(f[1]), Number(f[11]), Number(f[12]), Number(f[13]), Number(f[14])];
  } catch {
    return null;
  }
}

export interface CpuReading { node: number; server: number | null }

export interface CpuReader {
  /** Milliseconds of CPU used so far by this process. */
  node(): number;
  /**
   * Milliseconds of CPU used so far by the server: its postmaster with every backend it reaped
   * (the kernel adds a reaped child's time to its parent's) and every live child. Null when the
   * server's processes are not visible from here.
   */
  server(): number | null;
  /** Both, now. */
  read(): CpuReading;
}

/** Finds the server's postmaster through a backend of `pool` (its parent process). */
export async function cpuReader(pool: Pool): Promise<CpuReader> {
  const r = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const backend = procStat(r.rows[0]!.pid);
  const postmaster = backend ? backend[0] : null;
  const msPerTick = 1000 / clockTicks();
  const reader: CpuReader = {
    read: () => ({ node: reader.node(), server: reader.server() }),
    node() {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
    server() {
      if (postmaster === null) return null;
      const own = procStat(postmaster);
      if (!own) return null;
      let ticks = own[1] + own[2] + own[3] + own[4];
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry) || Number(entry) === postmaster) continue;
        const s = procStat(entry);
        if (s && s[0] === postmaster) ticks += s[1] + s[2];
      }
      return ticks * msPerTick;
    },
  };
  return reader;
}

/** CPU per unit of work between two readings, in ms. */
export function cpuPer(units: number, before: CpuReading, after: CpuReading): CpuReading {
  return {
    node: (after.node - before.node) / units,
    server: before.server === null || after.server === null ? null : (after.server - before.server) / units,
  };
}
