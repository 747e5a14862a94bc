/**
 * A conversation as agent turns: each assistant reply with the action AIOpsLab parsed from it,
 * its tokens, cost and latency, and the environment's response (collapsible). The response comes
 * from the step annotation on the reply, else from the next user message (the observation the
 * agent got next), so older or partial conversations still read correctly.
 */
import { DASH, fmtCall, fmtDuration, fmtInt, fmtUsd, num, plural } from '../format';
import type { Conversation, Message } from '../types';
import { Empty } from './Notices';

export interface Turn {
  reply: Message;
  /** What the agent was given for this turn, when no earlier turn already shows it. */
  input: Message | null;
  /** The observation that followed the reply (contains the environment response). */
  next: Message | null;
}

export function buildTurns(messages: Message[]): { intro: Message[]; turns: Turn[]; waiting: Message | null } {
  const sorted = [...messages].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  const intro: Message[] = [];
  const turns: Turn[] = [];
  let pending: Message | null = null;
  for (const m of sorted) {
    if (m.role === 'assistant') {
      const prev = turns.at(-1);
      turns.push({ reply: m, input: prev && prev.next === pending ? null : pending, next: null });
      pending = null;
    } else if (m.role === 'system' || (m.role === 'user' && turns.length === 0 && m.metadata?.type === 'instructions')) {
      intro.push(m);
    } else {
      const prev = turns.at(-1);
      if (prev && !prev.next) prev.next = m;
      pending = m;
    }
  }
  const last = turns.at(-1);
  const waiting = pending && (!last || last.next === pending) && sorted.at(-1) === pending ? pending : null;
  return { intro, turns, waiting };
}

function lines(s: string): string {
  return plural(s ? s.split('\n').length : 0, 'line');
}

function TurnView({ turn, index }: { turn: Turn; index: number }) {
  const md = turn.reply.metadata ?? {};
  const env = md.env_step;
  const usage = md.usage ?? {};
  const step = turn.reply.step ?? env?.step ?? index + 1;
  const response = typeof env?.response === 'string' ? env.response : turn.next?.content ?? null;
  const action = env?.api ? fmtCall(env.api, env.args, env.kwargs) : null;
  const cost = num(md.cost_usd);
  return (
    <li class="turn" data-step={step}>
      <div class="turn-head">
        <h3>Step {step}</h3>
        {action
          ? <code class="action" title="The action AIOpsLab parsed from the reply">{action}</code>
          : env ? <span class="badge badge-failed">not parsed</span> : <span class="badge badge-neutral">awaiting environment</span>}
        {env?.submitted && <span class="badge badge-completed">submitted</span>}
      </div>
      {turn.input && (
        <details class="io">
          <summary>Input to the agent <span class="muted small">({lines(turn.input.content)})</span></summary>
          <pre class="pre">{turn.input.content}</pre>
        </details>
      )}
      <div class="reply">
        <span class="reply-label">Agent</span>
        <pre class="pre pre-reply">{turn.reply.content || <em class="muted">(empty reply)</em>}</pre>
      </div>
      <dl class="metrics">
        <div><dt>Prompt</dt><dd>{fmtInt(usage.prompt_tokens)}</dd></div>
        <div><dt>Completion</dt><dd>{fmtInt(usage.completion_tokens)}</dd></div>
        {num(usage.cached_tokens) ? <div><dt>Cached</dt><dd>{fmtInt(usage.cached_tokens)}</dd></div> : null}
        {num(usage.reasoning_tokens) ? <div><dt>Reasoning</dt><dd>{fmtInt(usage.reasoning_tokens)}</dd></div> : null}
        <div><dt>Cost</dt><dd>{cost === null ? DASH : fmtUsd(cost)}</dd></div>
        <div><dt>Latency</dt><dd>{fmtDuration(num(md.latency_ms))}</dd></div>
        {md.served_model && <div><dt>Served by</dt><dd class="mono">{md.served_model}</dd></div>}
        {md.finish_reason && <div><dt>Finish</dt><dd>{md.finish_reason}</dd></div>}
      </dl>
      {response !== null && (
        <details class="io env-response">
          <summary>
            Environment response <span class="muted small">({lines(response)}{env?.duration_ms !== undefined ? ` · ${fmtDuration(env.duration_ms)}` : ''}{env?.response_truncated ? ' · truncated' : ''})</span>
          </summary>
          <pre class="pre">{response}</pre>
        </details>
      )}
    </li>
  );
}

/** `active`: the run is still going, so a trailing observation means the model is thinking. */
export function TranscriptView({ conversation, active }: { conversation: Conversation; active: boolean }) {
  const { intro, turns, waiting } = buildTurns(conversation.messages ?? []);
  return (
    <div class="transcript">
      {intro.map((m, i) => (
        <details key={`intro-${i}`} class="io intro">
          <summary>{m.role === 'system' ? 'System prompt' : 'Task instructions'} <span class="muted small">({lines(m.content)})</span></summary>
          <pre class="pre">{m.content}</pre>
        </details>
      ))}
      {turns.length === 0 && !(waiting && active) && <Empty>The agent has not taken a step yet.</Empty>}
      <ol class="turns">
        {turns.map((t, i) => <TurnView key={t.reply.seq ?? i} turn={t} index={i} />)}
      </ol>
      {waiting && active && (
        <div class="turn turn-waiting" role="status">
          <p><span class="spinner" aria-hidden="true" /> Waiting for the model’s next action…</p>
          <details class="io"><summary>Latest input to the agent</summary><pre class="pre">{waiting.content}</pre></details>
        </div>
      )}
    </div>
  );
}
