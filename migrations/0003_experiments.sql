-- Experiments: problems × models × repeats run as ordinary tasks, resumable, with claim-time limits.

CREATE TABLE experiments (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Used in file names of the CSV/JSON downloads and typed on the command line.
  name                  text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
  description           text CHECK (description IS NULL OR length(description) <= 2000),
  -- The selectors as given ({problem_ids, patterns, applications, task_types}); resubmissions are compared with them.
  problem_selectors     jsonb NOT NULL CHECK (jsonb_typeof(problem_selectors) = 'object'),
  -- What the selectors matched in the catalog at creation; resuming reuses this list.
  problem_ids           text[] NOT NULL CHECK (cardinality(problem_ids) >= 1),
  models                text[] NOT NULL CHECK (cardinality(models) >= 1),
  repeats               integer NOT NULL CHECK (repeats BETWEEN 1 AND 100),
  -- Normalised task parameters shared by every task (agent_config without the model).
  parameters            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(parameters) = 'object'),
  spend_cap_usd         numeric(14, 6) CHECK (spend_cap_usd IS NULL OR spend_cap_usd > 0),
  -- Running tasks of one model in this experiment; model_max_running ({model: n}) overrides it per model.
  max_running_per_model integer CHECK (max_running_per_model IS NULL OR max_running_per_model >= 1),
  model_max_running     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(model_max_running) = 'object'),
  -- Stored intent only; progress (running, completed …) is derived from the tasks.
  status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX experiments_created ON experiments (created_at DESC, id DESC);

-- Which combination a task runs. The model is kept as the experiment names it (the results group by it);
-- resolved_model is the provider id the global concurrency limits match.
ALTER TABLE tasks
  ADD COLUMN experiment_model  text,
  ADD COLUMN experiment_repeat integer CHECK (experiment_repeat IS NULL OR experiment_repeat >= 1),
  ADD COLUMN resolved_model    text,
  ADD CONSTRAINT experiment_combination_complete CHECK (
    (experiment_model IS NULL) = (experiment_repeat IS NULL)
    AND (experiment_model IS NULL OR experiment_id IS NOT NULL));

-- NOT VALID: databases from before experiments existed may hold free-form experiment ids; new rows are checked.
ALTER TABLE tasks ADD CONSTRAINT tasks_experiment_fk FOREIGN KEY (experiment_id) REFERENCES experiments (id) NOT VALID;

-- At most one live-or-done task per combination: concurrent resubmissions cannot duplicate work,
-- while a failed, timed-out or cancelled combination may get a new task.
CREATE UNIQUE INDEX tasks_experiment_combination ON tasks (experiment_id, problem_id, experiment_model, experiment_repeat)
  WHERE experiment_model IS NOT NULL AND status IN ('pending', 'running', 'completed');
-- The claim-time concurrency checks count running tasks by model.
CREATE INDEX tasks_running_models ON tasks (experiment_id, experiment_model) WHERE status = 'running';

-- Global caps on running tasks, by a glob over model ids: `anthropic/*` caps a provider, `openai/gpt-4o`
-- one model. Every matching limit applies. max_running 0 pauses the matching models.
CREATE TABLE model_concurrency_limits (
  model_pattern text PRIMARY KEY CHECK (length(model_pattern) BETWEEN 1 AND 200),
  -- The glob as a LIKE pattern, with LIKE's own wildcards escaped (as claimTask's globToLike does).
  like_pattern  text GENERATED ALWAYS AS (
    replace(replace(replace(replace(replace(model_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_')) STORED,
  max_running   integer NOT NULL CHECK (max_running >= 0),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
