/**
 * `aiopslab-executor experiment run|status|results|cancel` — experiments over the REST API, like
 * the other client commands: they never touch the database, so they work against a remote server.
 */
import { writeFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { ApiClient, DEFAULT_API_URL, EXIT, UsageError, describeError, exitCodeFor, resolveConnection, type ConnectionFlags } from './apiClient.js';
import { sleep } from './eventStream.js';
import { detectStyle, formatCost, formatInt, formatTime, paintStatus, renderFields, renderTable, type Column, type OutputStyle } from './terminalOutput.js';

/** Where the commands write; tests pass their own. */
export interface ExperimentIo {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  style: OutputStyle;
  /** Called on a command-line mistake (bad flag) with exit code 2, as the other client commands do. */
  exit?(code: number): never;
}

const defaultIo = (): ExperimentIo => ({
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
  env: process.env,
  style: detectStyle(process.stdout),
});

interface ModelProgressJson {
  model: string; combinations: number; counts: Record<string, number>; spend_usd: number; max_running: number | null;
  cost_per_task_usd: number | null; estimate_basis: string; estimated_remaining_cost_usd: number | null;
}
interface ProgressJson {
  status: string; combinations: number; tasks_total: number; counts: Record<string, number>; finished: number; percent_finished: number;
  spend_usd: number; spend_cap_usd: number | null; spend_cap_reached: boolean; estimated_remaining_cost_usd: number | null; by_model: ModelProgressJson[];
}
interface ExperimentJson {
  id: string; name: string; status: string; problem_ids: string[]; models: string[]; repeats: number; combinations: number;
  created_at: string; progress: ProgressJson; created?: boolean; tasks_created?: number; cancelled_tasks?: number;
}
interface StatsJson {
  model?: string; task_type?: string; problem_id?: string; tasks: number; errored: number; successes: number; success_rate: number | null;
  success_ci_low: number | null; success_ci_high: number | null; ttx_name: string | null; ttx_mean_s: number | null; ttx_median_s: number | null;
  steps_mean: number | null; input_tokens_mean: number | null; output_tokens_mean: number | null; cost_per_task_usd: number | null; cost_total_usd: number;
}
interface ResultsJson { summary: StatsJson[]; by_model: StatsJson[]; detail: StatsJson[] }

/** Statuses after which waiting longer changes nothing without the user acting. */
const SETTLED = new Set(['completed', 'incomplete', 'cancelled', 'spend_cap_reached']);
const TABLES = ['summary', 'by_model', 'detail', 'tasks'];

const list = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

function number(name: string, opts: { int?: boolean; min?: number; max?: number } = {}) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
      throw new InvalidArgumentError(`${name} must be ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}${opts.max !== undefined ? ` <= ${opts.max}` : ''}`);
    }
    return n;
  };
}

/** `model=n,model2=m` → {model: n, model2: m}. */
export function parseModelCaps(v: string, prev: Record<string, number> = {}): Record<string, number> {
  const out = { ...prev };
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.lastIndexOf('=');
    const n = Number(part.slice(i + 1));
    if (i <= 0 || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected model=n with n >= 1, got "${part}"`);
    out[part.slice(0, i)] = n;
  }
  return out;
}

interface RunOpts extends ConnectionFlags {
  name: string; description?: string; problems?: string[]; applications?: string[]; taskTypes?: string[]; models?: string[]; repeats?: number;
  maxSteps?: number; timeoutMinutes?: number; priority?: number; temperature?: number; maxTokens?: number; topP?: number; backendType?: string;
  spendCap?: number; maxRunningPerModel?: number; modelMaxRunning?: Record<string, number>; retryFailed?: boolean;
  wait?: boolean; interval: number; json?: boolean;
}

/** The POST /experiments body: `--problems` entries with `*` or `?` are patterns, the rest ids. */
export function experimentBody(o: RunOpts): Record<string, unknown> {
  const body: Record<string, unknown> = { name: o.name };
  if (o.description !== undefined) body.description = o.description;
  if (o.problems?.length) {
    const patterns = o.problems.filter((p) => /[*?]/.test(p));
    const ids = o.problems.filter((p) => !/[*?]/.test(p));
    if (ids.length) body.problem_ids = ids;
    if (patterns.length) body.patterns = patterns;
  }
  if (o.applications?.length) body.applications = o.applications;
  if (o.taskTypes?.length) body.task_types = o.taskTypes;
  if (o.models?.length) body.models = o.models;
  if (o.repeats !== undefined) body.repeats = o.repeats;
  const agent: Record<string, unknown> = {};
  if (o.temperature !== undefined) agent.temperature = o.temperature;
  if (o.maxTokens !== undefined) agent.max_tokens = o.maxTokens;
  if (o.topP !== undefined) agent.top_p = o.topP;
  const parameters: Record<string, unknown> = {};
  if (o.maxSteps !== undefined) parameters.max_steps = o.maxSteps;
  if (o.timeoutMinutes !== undefined) parameters.timeout_minutes = o.timeoutMinutes;
  if (o.priority !== undefined) parameters.priority = o.priority;
  if (o.backendType !== undefined) parameters.backend_type = o.backendType;
  if (Object.keys(agent).length) parameters.agent_config = agent;
  if (Object.keys(parameters).length) body.parameters = parameters;
  if (o.spendCap !== undefined) body.spend_cap_usd = o.spendCap;
  if (o.maxRunningPerModel !== undefined) body.max_running_per_model = o.maxRunningPerModel;
  if (o.modelMaxRunning !== undefined) body.model_max_running = o.modelMaxRunning;
  if (o.retryFailed) body.retry_failed = true;
  return body;
}

const pct = (x: number | null, decimals = 1) => (x === null ? '-' : `${(x * 100).toFixed(decimals)}%`);
const fixed = (x: number | null, d: number) => (x === null ? '-' : x.toFixed(d));

function progressLine(e: ExperimentJson): string {
  const p = e.progress;
  const c = p.counts;
  const est = p.estimated_remaining_cost_usd === null ? 'unknown' : formatCost(p.estimated_remaining_cost_usd);
  return `${e.name}: ${p.status} — ${p.finished}/${p.combinations} finished (${c.completed} completed, ${c.failed} failed, ${c.timeout} timeout), `
    + `${c.running} running, ${c.pending} pending; spent ${formatCost(p.spend_usd)}${p.spend_cap_usd !== null ? ` of ${formatCost(p.spend_cap_usd)}` : ''}, ~${est} to go\n`;
}

function renderExperiment(e: ExperimentJson, style: OutputStyle): string {
  const p = e.progress;
  const head = renderFields([
    ['Experiment', `${e.name} (${e.id})`],
    ['Status', paintStatus(style, p.status)],
    ['Combinations', `${e.problem_ids.length} problems × ${e.models.length} models × ${e.repeats} repeats = ${p.combinations}`],
    ['Finished', `${p.finished} (${p.percent_finished}%)`],
    ['Spend', `${formatCost(p.spend_usd)}${p.spend_cap_usd !== null ? ` of cap ${formatCost(p.spend_cap_usd)}${p.spend_cap_reached ? ' (reached)' : ''}` : ''}`],
    ['Est. remaining', p.estimated_remaining_cost_usd === null ? 'unknown (no task has ended yet)' : formatCost(p.estimated_remaining_cost_usd)],
    ['Created', formatTime(e.created_at)],
  ], style);
  const cols: Column<ModelProgressJson>[] = [
    { header: 'MODEL', value: (m) => m.model, flexible: true },
    ...['pending', 'running', 'completed', 'failed', 'timeout', 'cancelled', 'not_created'].map((k) => ({
      header: k === 'not_created' ? 'MISSING' : k.toUpperCase(), value: (m: ModelProgressJson) => String(m.counts[k] ?? 0), align: 'right' as const,
    })),
    { header: 'SPENT', value: (m) => formatCost(m.spend_usd), align: 'right' },
    { header: '$/TASK', value: (m) => formatCost(m.cost_per_task_usd), align: 'right' },
    { header: 'EST. LEFT', value: (m) => (m.estimated_remaining_cost_usd === null ? '?' : formatCost(m.estimated_remaining_cost_usd)), align: 'right' },
    { header: 'BASIS', value: (m) => m.estimate_basis },
  ];
  return `${head}\n${renderTable(p.by_model, cols, style)}`;
}

export function renderResultsTable(rows: StatsJson[], table: string, style: OutputStyle): string {
  const key: Column<StatsJson>[] = table === 'detail'
    ? [{ header: 'PROBLEM', value: (r) => r.problem_id ?? '', flexible: true }, { header: 'MODEL', value: (r) => r.model ?? '' }]
    : table === 'by_model'
      ? [{ header: 'MODEL', value: (r) => r.model ?? '', flexible: true }]
      : [{ header: 'MODEL', value: (r) => r.model ?? '', flexible: true }, { header: 'TASK TYPE', value: (r) => r.task_type ?? '' }];
  const cols: Column<StatsJson>[] = [
    ...key,
    { header: 'N', value: (r) => String(r.tasks), align: 'right' },
    { header: 'ERR', value: (r) => String(r.errored), align: 'right' },
    { header: 'SUCCESS', value: (r) => pct(r.success_rate), align: 'right' },
    // The API rounds the bounds to 4 decimals; two decimals of a percent show them without rounding twice.
    { header: '95% CI', value: (r) => (r.success_ci_low === null ? '-' : `${pct(r.success_ci_low, 2)}–${pct(r.success_ci_high, 2)}`), align: 'right' },
    ...(table === 'by_model' ? [] : [
      { header: 'TTX', value: (r: StatsJson) => r.ttx_name ?? '-' },
      { header: 'MEAN s', value: (r: StatsJson) => fixed(r.ttx_mean_s, 1), align: 'right' as const },
      { header: 'MEDIAN s', value: (r: StatsJson) => fixed(r.ttx_median_s, 1), align: 'right' as const },
    ]),
    { header: 'STEPS', value: (r) => fixed(r.steps_mean, 1), align: 'right' },
    { header: 'IN TOK', value: (r) => formatInt(r.input_tokens_mean), align: 'right' },
    { header: 'OUT TOK', value: (r) => formatInt(r.output_tokens_mean), align: 'right' },
    { header: '$/TASK', value: (r) => formatCost(r.cost_per_task_usd), align: 'right' },
    { header: '$ TOTAL', value: (r) => formatCost(r.cost_total_usd), align: 'right' },
  ];
  return renderTable(rows, cols, style);
}

export function registerExperimentCommands(program: Command, io: ExperimentIo = defaultIo()): void {
  const exit = io.exit ?? ((code: number) => process.exit(code));
  const connectionOptions = (cmd: Command): Command => cmd
    .option('--api-url <url>', `API base URL (default: env API_URL, else ${DEFAULT_API_URL})`)
    .option('--token <token>', 'bearer token (default: env API_TOKEN)')
    // Commander exits 1 on a bad flag; scripts tell "called wrong" (2) from "it failed" (1).
    .exitOverride((err) => exit(err.exitCode === 0 ? 0 : EXIT.usage));

  const client = (o: ConnectionFlags) => new ApiClient(resolveConnection(o, io.env));
  const act = <A extends unknown[]>(fn: (...args: A) => Promise<number>) => async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (e) {
      io.err(`${describeError(e)}\n`);
      process.exitCode = exitCodeFor(e);
    }
  };
  const ref = (s: string) => encodeURIComponent(s);

  const experiment = program.command('experiment').description('Benchmarks: problems × models × repeats as tasks, resumable, with results tables.');

  connectionOptions(experiment.command('run'))
    .description('Create an experiment, or resume it (same name: only combinations not yet completed are queued).')
    .requiredOption('--name <name>', 'unique experiment name (letters, digits, . _ -)')
    .option('--description <text>', 'free text kept with the experiment')
    .option('--problems <list>', 'problem ids and globs, comma-separated (k8s_target_port-misconfig-*,*-detection-*)', list)
    .option('--applications <list>', 'only these applications (e.g. hotel_reservation)', list)
    .option('--task-types <list>', 'only these task types (detection, localization, analysis, mitigation)', list)
    .option('--models <list>', 'models to compare, comma-separated', list)
    .option('--repeats <n>', 'runs per problem × model (default 1)', number('--repeats', { int: true, min: 1, max: 100 }))
    .option('--max-steps <n>', 'agent steps per task', number('--max-steps', { int: true, min: 1, max: 1000 }))
    .option('--timeout-minutes <n>', 'wall-clock limit per task', number('--timeout-minutes', { int: true, min: 1, max: 180 }))
    .option('--priority <n>', 'queue priority of the tasks (0-10)', number('--priority', { int: true, min: 0, max: 10 }))
    .option('--temperature <x>', 'sampling temperature', number('--temperature', { min: 0, max: 2 }))
    .option('--max-tokens <n>', 'max tokens per LLM reply', number('--max-tokens', { int: true, min: 1 }))
    .option('--top-p <x>', 'nucleus sampling', number('--top-p', { min: 0, max: 1 }))
    .option('--backend-type <type>', 'only workers of this backend (kind, existing)')
    .option('--spend-cap <usd>', 'no new task starts once the experiment spent this much', number('--spend-cap', { min: 0 }))
    .option('--max-running-per-model <n>', 'running tasks per model', number('--max-running-per-model', { int: true, min: 1 }))
    .option('--model-max-running <model=n,...>', 'per-model running caps', parseModelCaps)
    .option('--retry-failed', 'when resuming, also rerun failed and timed-out combinations')
    .option('--wait', 'follow progress until the experiment settles, then print the results')
    .option('--interval <seconds>', 'polling interval of --wait', number('--interval', { min: 0.1 }), 10)
    .option('--json', 'print the API\'s JSON')
    .addHelpText('after', `
Examples:
  $ aiopslab-executor experiment run --name tp-detect --problems 'k8s_target_port-misconfig-*' --task-types detection \\
      --models openai/gpt-4o-mini,anthropic/claude-3-haiku --repeats 3 --spend-cap 5 --max-running-per-model 2
  $ aiopslab-executor experiment run --name tp-detect                # resume after an interruption
  $ aiopslab-executor experiment run --name tp-detect --retry-failed # also rerun failed/timed-out ones
Exit codes: 0 ok (with --wait: completed), 2 usage, 3 (--wait) settled without completing, 4 not found, 5 conflict, 6 unreachable.
`)
    .action(act(async (o: RunOpts) => {
      const api = client(o);
      let e = await api.post<ExperimentJson>('/api/v1/experiments', experimentBody(o));
      if (o.json && !o.wait) { io.out(`${JSON.stringify(e, null, 2)}\n`); return EXIT.ok; }
      if (!o.json) {
        io.out(e.created
          ? `Created experiment ${e.name} (${e.id}): ${e.tasks_created} tasks = ${e.problem_ids.length} problems × ${e.models.length} models × ${e.repeats} repeats\n`
          : `Resumed experiment ${e.name} (${e.id}): ${e.tasks_created} new task(s) for combinations not yet done\n`);
        io.out(progressLine(e));
      }
      if (!o.wait) return EXIT.ok;
      let last = '';
      while (!SETTLED.has(e.progress.status)) {
        await sleep(o.interval * 1000);
        e = await api.get<ExperimentJson>(`/api/v1/experiments/${ref(e.id)}`);
        const line = progressLine(e);
        if (line !== last && !o.json) io.out(line);
        last = line;
      }
      const results = await api.get<ResultsJson>(`/api/v1/experiments/${ref(e.id)}/results`);
      if (o.json) io.out(`${JSON.stringify({ experiment: e, results }, null, 2)}\n`);
      else io.out(`\n${renderResultsTable(results.summary, 'summary', io.style)}`);
      return e.progress.status === 'completed' ? EXIT.ok : EXIT.notCompleted;
    }));

  connectionOptions(experiment.command('status'))
    .description('One experiment\'s progress (by name or id), or the list of experiments.')
    .argument('[experiment]', 'name or id')
    .option('--json', 'print the API\'s JSON')
    .action(act(async (name: string | undefined, o: ConnectionFlags & { json?: boolean }) => {
      const api = client(o);
      if (name) {
        const e = await api.get<ExperimentJson>(`/api/v1/experiments/${ref(name)}`);
        io.out(o.json ? `${JSON.stringify(e, null, 2)}\n` : renderExperiment(e, io.style));
        return EXIT.ok;
      }
      const page = await api.get<{ experiments: ExperimentJson[]; total: number }>('/api/v1/experiments', { page_size: 100 });
      if (o.json) { io.out(`${JSON.stringify(page, null, 2)}\n`); return EXIT.ok; }
      if (!page.experiments.length) { io.out('No experiments.\n'); return EXIT.ok; }
      io.out(renderTable(page.experiments, [
        { header: 'NAME', value: (e) => e.name, flexible: true },
        { header: 'STATUS', value: (e) => e.progress.status, colour: (e, t) => paintStatus(io.style, t) },
        { header: 'FINISHED', value: (e) => `${e.progress.finished}/${e.progress.combinations}`, align: 'right' },
        { header: 'RUNNING', value: (e) => String(e.progress.counts.running ?? 0), align: 'right' },
        { header: 'SPENT', value: (e) => formatCost(e.progress.spend_usd), align: 'right' },
        { header: 'EST. LEFT', value: (e) => (e.progress.estimated_remaining_cost_usd === null ? '?' : formatCost(e.progress.estimated_remaining_cost_usd)), align: 'right' },
        { header: 'CREATED', value: (e) => formatTime(e.created_at) },
      ], io.style));
      return EXIT.ok;
    }));

  connectionOptions(experiment.command('results'))
    .description('Results per model × task type (success rate with 95% CI, time-to-X, steps, tokens, cost), per model, or per problem × model.')
    .argument('<experiment>', 'name or id')
    .option('--format <format>', 'table, csv or json', 'table')
    .option('--table <table>', `${TABLES.join(', ')} (table and csv formats)`, 'summary')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(act(async (name: string, o: ConnectionFlags & { format: string; table: string; output?: string }) => {
      if (!['table', 'csv', 'json'].includes(o.format)) throw new UsageError(`--format must be table, csv or json, not "${o.format}"`);
      if (!TABLES.includes(o.table)) throw new UsageError(`--table must be one of ${TABLES.join(', ')}, not "${o.table}"`);
      const api = client(o);
      const path = `/api/v1/experiments/${ref(name)}/results`;
      let text: string;
      if (o.format === 'csv') text = await (await api.request('GET', path, { query: { format: 'csv', table: o.table } })).text();
      else if (o.format === 'json') text = `${JSON.stringify(await api.get(path, { include_tasks: true }), null, 2)}\n`;
      else {
        if (o.table === 'tasks') throw new UsageError('--table tasks is available with --format csv or json');
        const r = await api.get<ResultsJson>(path);
        text = renderResultsTable(r[o.table as keyof ResultsJson], o.table, o.output ? { ...io.style, color: false } : io.style);
      }
      if (o.output) { await writeFile(o.output, text); io.err(`Wrote ${o.output}\n`); } else io.out(text);
      return EXIT.ok;
    }));

  connectionOptions(experiment.command('cancel'))
    .description('Cancel an experiment: pending tasks at once, running ones stopped by their workers. `run --name` resumes it.')
    .argument('<experiment>', 'name or id')
    .option('--json', 'print the API\'s JSON')
    .action(act(async (name: string, o: ConnectionFlags & { json?: boolean }) => {
      const e = await client(o).post<ExperimentJson>(`/api/v1/experiments/${ref(name)}/cancel`);
      io.out(o.json ? `${JSON.stringify(e, null, 2)}\n` : `Cancelled experiment ${e.name}: ${e.cancelled_tasks} task(s) cancelled\n`);
      return EXIT.ok;
    }));
}
