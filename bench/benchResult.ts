/** What every benchmark hands back: its figures, the goals it is judged by, and what it measured. */

export interface GoalCheck {
  goal: string;
  measured: string;
  /** null: informational, no goal applies. */
  met: boolean | null;
}

export interface BenchResult {
  id: string;
  title: string;
  /** Precisely what was timed, in a sentence or two. */
  measures: string;
  goals: GoalCheck[];
  /** The figures, as JSON (milliseconds unless a key says otherwise). */
  data: Record<string, unknown>;
  notes: string[];
}

export interface BenchOptions {
  quick: boolean;
  /** Progress lines (stderr). */
  log: (line: string) => void;
}
