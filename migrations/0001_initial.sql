-- Initial schema: the queue (tasks), the workers, the task timeline, LLM conversations,
-- and the problem and model catalogs. Time is always timestamptz written by the database.

CREATE TABLE tasks (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  problem_id       text NOT NULL CHECK (problem_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$'),
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'completed', 'failed', 'timeout', 'cancelled')),
  priority         integer NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 10),
  parameters       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(parameters) = 'object'),
  -- NULL: any backend may run it.
  backend_type     text CHECK (backend_type IS NULL OR length(backend_type) BETWEEN 1 AND 100),
  timeout_minutes  integer NOT NULL DEFAULT 30 CHECK (timeout_minutes BETWEEN 1 AND 180),
  max_steps        integer NOT NULL DEFAULT 30 CHECK (max_steps BETWEEN 1 AND 1000),
  worker_id        text,
  attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts     integer NOT NULL DEFAULT 2 CHECK (max_attempts >= 1),
  lease_expires_at timestamptz,
  result           jsonb,
  error_type       text,
  error_details    text,
  idempotency_key  text CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 255),
  request_hash     text,
  experiment_id    uuid,
  callback_url     text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  completed_at     timestamptz,
  CONSTRAINT running_has_worker CHECK (status <> 'running' OR (worker_id IS NOT NULL AND started_at IS NOT NULL AND lease_expires_at IS NOT NULL)),
  CONSTRAINT terminal_has_completed_at CHECK ((status IN ('completed', 'failed', 'timeout', 'cancelled')) = (completed_at IS NOT NULL)),
  CONSTRAINT started_after_created CHECK (started_at IS NULL OR started_at >= created_at),
  CONSTRAINT completed_after_started CHECK (completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at)
);

CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The claim query: pending tasks by priority then age.
CREATE INDEX tasks_claim ON tasks (priority DESC, created_at ASC) WHERE status = 'pending';
-- Maintenance: leases and timeouts of running tasks.
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';
-- List filters and sorts.
CREATE INDEX tasks_created ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_status_created ON tasks (status, created_at DESC);
CREATE INDEX tasks_problem_created ON tasks (problem_id, created_at DESC);
CREATE INDEX tasks_worker_created ON tasks (worker_id, created_at DESC) WHERE worker_id IS NOT NULL;
CREATE INDEX tasks_backend_created ON tasks (backend_type, created_at DESC);
CREATE INDEX tasks_experiment ON tasks (experiment_id) WHERE experiment_id IS NOT NULL;
CREATE INDEX tasks_updated ON tasks (updated_at DESC);
CREATE INDEX tasks_started ON tasks (started_at DESC) WHERE started_at IS NOT NULL;
CREATE INDEX tasks_completed ON tasks (completed_at DESC) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_priority_created ON tasks (priority DESC, created_at DESC);

-- The state machine, enforced whoever writes: pending -> running | cancelled;
-- running -> completed | failed | timeout | cancelled | pending (requeue after a lost worker).
-- A terminal task may still have its result/error fields filled in, but never changes status.
CREATE FUNCTION tasks_enforce_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    IF NOT (
      (OLD.status = 'pending' AND NEW.status IN ('running', 'cancelled')) OR
      (OLD.status = 'running' AND NEW.status IN ('completed', 'failed', 'timeout', 'cancelled', 'pending'))
    ) THEN
      RAISE EXCEPTION 'illegal task transition % -> % for task %', OLD.status, NEW.status, OLD.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'task_state_machine';
    END IF;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER tasks_transition BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_enforce_transition();

-- Every insert and status change is announced, so workers wake and live views update,
-- whichever process or host made the change.
CREATE FUNCTION tasks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM pg_notify('task_events', json_build_object(
      'id', NEW.id, 'status', NEW.status, 'problem_id', NEW.problem_id,
      'worker_id', NEW.worker_id, 'backend_type', NEW.backend_type,
      'experiment_id', NEW.experiment_id)::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_notify();

CREATE TABLE workers (
  id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$'),
  backend_type     text NOT NULL CHECK (length(backend_type) BETWEEN 1 AND 100),
  status           text NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'busy', 'offline')),
  last_heartbeat   timestamptz NOT NULL DEFAULT now(),
  current_task_id  uuid,
  capabilities     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(capabilities) = 'object'),
  metadata         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  cluster_dirty    boolean NOT NULL DEFAULT false,
  registered_at    timestamptz NOT NULL DEFAULT now(),
  tasks_completed  integer NOT NULL DEFAULT 0 CHECK (tasks_completed >= 0),
  tasks_failed     integer NOT NULL DEFAULT 0 CHECK (tasks_failed >= 0),
  CONSTRAINT busy_has_task CHECK ((status = 'busy') = (current_task_id IS NOT NULL))
);
CREATE INDEX workers_status ON workers (status, last_heartbeat);
CREATE INDEX workers_backend ON workers (backend_type, status);

CREATE FUNCTION workers_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status OR NEW.current_task_id IS DISTINCT FROM OLD.current_task_id THEN
    PERFORM pg_notify('worker_events', json_build_object('id', NEW.id, 'status', NEW.status, 'current_task_id', NEW.current_task_id)::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER workers_notify AFTER INSERT OR UPDATE ON workers FOR EACH ROW EXECUTE FUNCTION workers_notify();

CREATE TABLE task_logs (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id    uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  timestamp  timestamptz NOT NULL DEFAULT clock_timestamp(),
  level      text NOT NULL DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warning', 'error', 'critical')),
  message    text NOT NULL,
  context    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX task_logs_task ON task_logs (task_id, id);
CREATE INDEX task_logs_task_level ON task_logs (task_id, level, id);

CREATE FUNCTION task_logs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('task_log_events', json_build_object('task_id', NEW.task_id, 'id', NEW.id, 'level', NEW.level)::text);
  RETURN NULL;
END $$;
CREATE TRIGGER task_logs_notify AFTER INSERT ON task_logs FOR EACH ROW EXECUTE FUNCTION task_logs_notify();

-- One conversation per task attempt. Messages are appended to llm_messages as they happen
-- (a crash loses at most the message in flight); `messages` holds the whole array once the
-- conversation ends, for people who query the table directly.
CREATE TABLE llm_conversations (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id           uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  attempt           integer NOT NULL DEFAULT 1,
  session_id        text,
  started_at        timestamptz NOT NULL DEFAULT now(),
  ended_at          timestamptz,
  model_name        text NOT NULL,
  provider          text,
  llm_config        jsonb NOT NULL DEFAULT '{}'::jsonb,
  metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
  messages          jsonb,
  total_messages    integer NOT NULL DEFAULT 0,
  prompt_tokens     bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  cached_tokens     bigint NOT NULL DEFAULT 0,
  reasoning_tokens  bigint NOT NULL DEFAULT 0,
  total_tokens      bigint NOT NULL DEFAULT 0,
  cost_usd          numeric(14, 8) NOT NULL DEFAULT 0,
  llm_calls         integer NOT NULL DEFAULT 0,
  UNIQUE (task_id, attempt)
);
CREATE INDEX llm_conversations_started ON llm_conversations (started_at DESC);
CREATE INDEX llm_conversations_model ON llm_conversations (model_name, started_at DESC);

CREATE TABLE llm_messages (
  conversation_id uuid NOT NULL REFERENCES llm_conversations (id) ON DELETE CASCADE,
  seq             integer NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  role            text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'function', 'tool')),
  content         text NOT NULL,
  step            integer,
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  PRIMARY KEY (conversation_id, seq)
);

CREATE FUNCTION llm_messages_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t uuid;
BEGIN
  SELECT task_id INTO t FROM llm_conversations WHERE id = NEW.conversation_id;
  PERFORM pg_notify('message_events', json_build_object('task_id', t, 'conversation_id', NEW.conversation_id, 'seq', NEW.seq, 'role', NEW.role)::text);
  RETURN NULL;
END $$;
CREATE TRIGGER llm_messages_notify AFTER INSERT ON llm_messages FOR EACH ROW EXECUTE FUNCTION llm_messages_notify();

-- The problem catalog: from the bridge listing AIOpsLab's registry, else the 89 known ids.
CREATE TABLE problems (
  id          text PRIMARY KEY,
  application text NOT NULL,
  task_type   text NOT NULL CHECK (task_type IN ('detection', 'localization', 'analysis', 'mitigation')),
  deployment  text NOT NULL CHECK (deployment IN ('k8s', 'docker')),
  source      text NOT NULL CHECK (source IN ('aiopslab', 'builtin')),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX problems_app_type ON problems (application, task_type);

-- The model catalog cached from the provider's models endpoint; prices are USD per token.
CREATE TABLE models (
  id                text PRIMARY KEY,
  name              text,
  provider          text NOT NULL DEFAULT 'openrouter',
  context_length    integer,
  prompt_price      numeric(20, 12),
  completion_price  numeric(20, 12),
  raw               jsonb NOT NULL DEFAULT '{}'::jsonb,
  fetched_at        timestamptz NOT NULL DEFAULT now()
);
