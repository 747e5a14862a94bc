/**
 * The bridge protocol, version 1: newline-delimited JSON on file descriptor 3 between the worker and
 * `python/aiopslab_bridge.py`. This file and the Python file are the only two places that know it.
 *
 * Conversation: bridge `hello` → worker `run` (or `list`) → bridge events … `bye`, then the process
 * exits. While AIOpsLab's loop runs, each `action_request` is answered by one `action_reply` or
 * `action_error`; `stop` may arrive at any time. Every bridge event carries `ts` (epoch seconds).
 */

export const PROTOCOL_VERSION = 1;

/** Phase markers, in the order a complete run emits them. */
export type PhaseMarker =
  /** AIOpsLab imported ahead of the run (after a `prepare` message). */
  | 'prepared'
  | 'startup_started'
  | 'init_started'
  | 'init_done'
  | 'loop_started'
  | 'loop_done'
  | 'eval_started'
  | 'eval_done'
  | 'teardown_started'
  | 'teardown_done';

/** Where a failure happened: before/while importing AIOpsLab, init_problem, the agent loop, eval, teardown, or the protocol itself. */
export type BridgePhase = 'startup' | 'init' | 'loop' | 'eval' | 'teardown' | 'protocol';

interface Stamped {
  ts: number;
}

export interface HelloEvent extends Stamped {
  type: 'hello';
  protocol: number;
  python: string;
  pid: number;
  executable: string;
}

export interface PhaseEvent extends Stamped {
  type: 'phase';
  phase: PhaseMarker;
  /** For the cleanup the bridge runs after an aborted loop/eval: which phase failed. */
  after?: 'loop' | 'eval';
}

export interface InitializedEvent extends Stamped {
  type: 'initialized';
  problem_id: string;
  task_description: string;
  instructions: string;
  actions: Record<string, string>;
  /** Top-level string constants of <AIOPSLAB_DIR>/clients/utils/templates.py (read with `ast`, never imported). */
  templates: Record<string, string>;
  session_id: string | null;
}

export interface ActionRequestEvent extends Stamped {
  type: 'action_request';
  step: number;
  input: string;
}

/** One executed environment step (wraps Orchestrator.ask_env, so the final submit is included). */
export interface StepEvent extends Stamped {
  type: 'step';
  step: number;
  action: string;
  api: string | null;
  args: unknown[] | null;
  kwargs: Record<string, unknown> | null;
  response: string;
  submitted: boolean;
  duration_ms: number;
}

/** The session as JSON (orch.session.to_dict()); sent at the end of every run that created a session. */
export interface ResultsEvent extends Stamped {
  type: 'results';
  session: Record<string, unknown> | null;
  /** AIOpsLab's results dict; null when evaluation did not complete. */
  results: Record<string, unknown> | null;
  solution: unknown;
  /** Summary of start_problem's return value; null when it did not return. */
  return_summary: { final_state: string | null; submitted: boolean; framework_overhead: number | null; history_length: number | null } | null;
}

/** What the bridge did after an exception in the loop or eval (upstream skips app cleanup there). */
export interface CleanupEvent extends Stamped {
  type: 'cleanup';
  after: 'loop' | 'eval';
  recovered: boolean;
  app_cleaned: boolean;
  error: string | null;
}

export interface ErrorEvent extends Stamped {
  type: 'error';
  phase: BridgePhase;
  error_type: string;
  message: string;
  /** The last lines of the Python traceback. */
  traceback: string;
}

export interface ProblemsEvent extends Stamped {
  type: 'problems';
  problems: Array<{ id: string; deployment: string }>;
}

export interface WarningEvent extends Stamped {
  type: 'warning' | 'protocol_warning';
  message: string;
}

export interface ByeEvent extends Stamped {
  type: 'bye';
  exit_code: number;
}

export type BridgeEvent =
  | HelloEvent
  | PhaseEvent
  | InitializedEvent
  | ActionRequestEvent
  | StepEvent
  | ResultsEvent
  | CleanupEvent
  | ErrorEvent
  | ProblemsEvent
  | WarningEvent
  | ByeEvent;

export interface RunMessage {
  type: 'run';
  protocol: number;
  problem_id: string;
  max_steps: number;
  aiopslab_dir: string;
  /** Passed to Orchestrator(results_dir=pathlib.Path(...)). */
  results_dir: string;
  /** Private temp folder: TMPDIR, tempfile.tempdir and the target of AIOpsLab's fixed /tmp/<name> files. */
  tmp_dir: string;
  /** The task's folder: the bridge's working directory for the run (a bridge kept warm was started elsewhere). */
  work_dir: string;
  /** Host-wide folder for the lock that serialises get_traces/get_metrics (fixed local ports). */
  lock_dir: string;
  cluster: { name: string; control_plane_container: string | null };
  host_shell_expansion: boolean;
  agent_name: string;
}

/** Import AIOpsLab now, ahead of the task (preparedBridge.ts); `run` follows when a task adopts this bridge. */
export interface PrepareMessage {
  type: 'prepare';
  protocol: number;
  aiopslab_dir: string;
  tmp_dir: string;
}

export interface ListMessage {
  type: 'list';
  protocol: number;
  aiopslab_dir: string;
}

export interface ActionReplyMessage {
  type: 'action_reply';
  step: number;
  text: string;
}

/** The agent failed; the bridge raises an ordinary Exception in get_action so AIOpsLab recovers the fault. */
export interface ActionErrorMessage {
  type: 'action_error';
  step: number;
  code: string;
  message: string;
}

/** Fail the pending (or next) get_action; the bridge then exits without extra cleanup. */
export interface StopMessage {
  type: 'stop';
  reason: string;
}

export type WorkerMessage = PrepareMessage | RunMessage | ListMessage | ActionReplyMessage | ActionErrorMessage | StopMessage;

/** Bridge exit codes (the problem's own outcome is in the events; 0 = the bridge ran to its end). */
export const BRIDGE_EXIT = { ok: 0, bridgeBug: 1, protocol: 2, terminated: 3 } as const;

const EVENT_TYPES = new Set<BridgeEvent['type']>([
  'hello', 'phase', 'initialized', 'action_request', 'step', 'results', 'cleanup', 'error', 'problems', 'warning', 'protocol_warning', 'bye',
]);

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Parses one line from the bridge; throws ProtocolError for anything that is not a known event. */
export function parseBridgeEvent(line: string): BridgeEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError(`not JSON: ${line.slice(0, 200)}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ProtocolError(`not an object: ${line.slice(0, 200)}`);
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !EVENT_TYPES.has(type as BridgeEvent['type'])) throw new ProtocolError(`unknown event type ${JSON.stringify(type)}`);
  if ((type === 'action_request' || type === 'step') && !Number.isInteger((value as { step?: unknown }).step)) {
    throw new ProtocolError(`${type} without an integer step`);
  }
  return value as BridgeEvent;
}

export function encodeWorkerMessage(msg: WorkerMessage): string {
  return `${JSON.stringify(msg)}\n`;
}
