/** The experiment row, its stored definition and its API representation. */
import type { TaskParameters } from '../queue/taskRecord.js';

export const TASK_TYPES = ['detection', 'localization', 'analysis', 'mitigation'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** What the user asked for; resubmissions are compared with it. */
export interface ProblemSelectors {
  problem_ids: string[];
  /** Globs over problem ids (`*`, `?`), e.g. `k8s_target_port-misconfig-*`. */
  patterns: string[];
  applications: string[];
  task_types: TaskType[];
}

/** Task parameters shared by every task of an experiment: the model comes from the experiment's models. */
export type SharedParameters = Omit<TaskParameters, 'agent_config'> & { agent_config: Omit<TaskParameters['agent_config'], 'model'> };

export interface ExperimentLimits {
  spend_cap_usd: number | null;
  max_running_per_model: number | null;
  model_max_running: Record<string, number>;
}

export interface ExperimentRow extends ExperimentLimits {
  id: string;
  name: string;
  description: string | null;
  problem_selectors: ProblemSelectors;
  problem_ids: string[];
  models: string[];
  repeats: number;
  parameters: SharedParameters;
  status: 'active' | 'cancelled';
  created_at: Date;
  updated_at: Date;
}

export function combinationCount(e: Pick<ExperimentRow, 'problem_ids' | 'models' | 'repeats'>): number {
  return e.problem_ids.length * e.models.length * e.repeats;
}

export function experimentToJson(e: ExperimentRow): Record<string, unknown> {
  return {
    id: e.id,
    name: e.name,
    description: e.description,
    status: e.status,
    problem_selectors: e.problem_selectors,
    problem_ids: e.problem_ids,
    models: e.models,
    repeats: e.repeats,
    combinations: combinationCount(e),
    parameters: e.parameters,
    limits: { spend_cap_usd: e.spend_cap_usd, max_running_per_model: e.max_running_per_model, model_max_running: e.model_max_running },
    created_at: e.created_at,
    updated_at: e.updated_at,
  };
}

