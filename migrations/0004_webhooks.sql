-- Webhooks: one delivery per terminal state of a task that has a callback_url. The row is
-- written by a trigger in the same transaction as the status change, so every path that ends a
-- task (worker finish, API cancel, timeout sweep, lease expiry, experiment cancel, a worker host
-- over HTTP) produces exactly one delivery, and a pending delivery survives any restart.

CREATE TABLE webhook_deliveries (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id         uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  event           text NOT NULL CHECK (event IN ('task.completed', 'task.failed', 'task.timeout', 'task.cancelled')),
  url             text NOT NULL,
  -- Frozen when the task ended, so every attempt sends (and signs) the same body.
  payload         jsonb NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- While 'delivering': the sender's claim; past it, another process may take the delivery over.
  locked_until    timestamptz,
  last_attempt_at timestamptz,
  response_code   integer,
  last_error      text,
  delivered_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (task_id, event)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'delivering');

CREATE FUNCTION tasks_enqueue_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE d uuid := gen_random_uuid();
BEGIN
  INSERT INTO webhook_deliveries (id, task_id, event, url, payload)
  VALUES (d, NEW.id, 'task.' || NEW.status, NEW.callback_url, jsonb_build_object(
    'delivery_id', d,
    'event', 'task.' || NEW.status,
    'task', jsonb_build_object(
      'id', NEW.id, 'problem_id', NEW.problem_id, 'status', NEW.status, 'priority', NEW.priority,
      'parameters', NEW.parameters, 'backend_type', NEW.backend_type, 'worker_id', NEW.worker_id,
      'attempt', NEW.attempt, 'max_attempts', NEW.max_attempts, 'result', NEW.result,
      'error_type', NEW.error_type, 'error_details', NEW.error_details, 'experiment_id', NEW.experiment_id,
      'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'started_at', NEW.started_at,
      'completed_at', NEW.completed_at)))
  ON CONFLICT (task_id, event) DO NOTHING;
  RETURN NULL;
END $$;

CREATE TRIGGER tasks_enqueue_webhook AFTER UPDATE OF status ON tasks FOR EACH ROW
  WHEN (NEW.callback_url IS NOT NULL
        AND NEW.status IN ('completed', 'failed', 'timeout', 'cancelled')
        AND OLD.status NOT IN ('completed', 'failed', 'timeout', 'cancelled'))
  EXECUTE FUNCTION tasks_enqueue_webhook();

CREATE FUNCTION webhook_deliveries_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER webhook_deliveries_touch BEFORE UPDATE ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION webhook_deliveries_touch();
