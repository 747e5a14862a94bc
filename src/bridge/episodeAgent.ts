/**
 * The contract between the bridge runner and whatever answers AIOpsLab's `get_action`
 * (the LLM agent in production, a scripted agent in bridge tests).
 */

/** What `init_problem` returned, plus the prompt templates found in the user's AIOpsLab checkout. */
export interface EpisodeContext {
  problemId: string;
  taskDescription: string;
  instructions: string;
  /** AIOpsLab's actions dict: API name -> docstring, in AIOpsLab's order. */
  actions: Record<string, string>;
  /** Templates from clients/utils/templates.py of the checkout (e.g. DOCS_SHELL_ONLY), when found. */
  templates: Record<string, string>;
  /** AIOpsLab's session id, when the bridge could read it. */
  sessionId: string | null;
}

/** One environment step as the bridge reports it (the final submit included). */
export interface EpisodeStep {
  step: number;
  /** The agent's reply text exactly as AIOpsLab received it. */
  action: string;
  /** The parsed call, when AIOpsLab's parser accepted it. */
  api: string | null;
  args: unknown[] | null;
  kwargs: Record<string, unknown> | null;
  /** The environment's response text (command output, parse error, exception text…). */
  response: string;
  /** True when this step was a valid submission that ended the loop. */
  submitted: boolean;
  durationMs: number;
}

export interface EpisodeAgent {
  /** Called once, after init_problem returned and before the first action request. */
  init(ctx: EpisodeContext): Promise<void>;
  /**
   * Answers one `get_action(input)`. `input` is AIOpsLab's raw text (previous environment
   * response + "Please take the next action"). Throwing (e.g. an AppError with code llm_auth or
   * budget_exceeded) aborts the loop: the bridge raises an ordinary Exception inside AIOpsLab so
   * its own recovery path restores the injected fault.
   */
  nextAction(req: { step: number; input: string }): Promise<string>;
  /** Observes each completed step, in order. */
  onStep?(step: EpisodeStep): Promise<void> | void;
}
