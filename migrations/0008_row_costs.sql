-- What every claim and finish pays per task row (bench/RESULTS.md, round 5: profiles of the
-- server during a no-op drain).
--
-- 1. Identifier checks. A CHECK constraint is evaluated on every UPDATE of its row, whichever
--    columns change, so each claim and finish ran the task's problem_id check and the worker's id
--    check. Their bounded repetitions ({0,254}, {0,46}) compile into a large automaton that costs
--    ~34 µs per evaluation for a problem id (0.5 µs for the same rule written as a length bound
--    and an unbounded repetition). Same rules, same constraint names.
ALTER TABLE tasks DROP CONSTRAINT tasks_problem_id_check,
  ADD CONSTRAINT tasks_problem_id_check CHECK (length(problem_id) <= 255 AND problem_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]*$');
ALTER TABLE workers DROP CONSTRAINT workers_id_check,
  ADD CONSTRAINT workers_id_check CHECK (length(id) <= 48 AND id ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$');
ALTER TABLE experiments DROP CONSTRAINT experiments_name_check,
  ADD CONSTRAINT experiments_name_check CHECK (length(name) <= 128 AND name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$');

-- 2. Event triggers decide in their WHEN clause. A row trigger's WHEN is evaluated by the executor;
--    a false one queues nothing and calls no PL/pgSQL. The claim and finish statements defer their
--    events (migrations/0005), so for them these triggers now cost a comparison per row instead of
--    a function call. Payloads and channels are unchanged.
CREATE OR REPLACE FUNCTION tasks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('task_events', task_event(NEW));
  RETURN NULL;
END $$;
DROP TRIGGER tasks_notify ON tasks;
CREATE TRIGGER tasks_notify_insert AFTER INSERT ON tasks FOR EACH ROW
  WHEN (NOT notify_deferred()) EXECUTE FUNCTION tasks_notify();
CREATE TRIGGER tasks_notify AFTER UPDATE OF status ON tasks FOR EACH ROW
  WHEN (NEW.status IS DISTINCT FROM OLD.status AND NOT notify_deferred()) EXECUTE FUNCTION tasks_notify();

CREATE OR REPLACE FUNCTION workers_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('worker_events', worker_event(NEW));
  RETURN NULL;
END $$;
DROP TRIGGER workers_notify ON workers;
CREATE TRIGGER workers_notify_insert AFTER INSERT ON workers FOR EACH ROW
  WHEN (NOT notify_deferred()) EXECUTE FUNCTION workers_notify();
CREATE TRIGGER workers_notify AFTER UPDATE OF status, current_task_id ON workers FOR EACH ROW
  WHEN ((NEW.status IS DISTINCT FROM OLD.status OR NEW.current_task_id IS DISTINCT FROM OLD.current_task_id)
        AND NOT notify_deferred()) EXECUTE FUNCTION workers_notify();

CREATE OR REPLACE FUNCTION task_logs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('task_log_events', task_log_event(NEW));
  RETURN NULL;
END $$;
DROP TRIGGER task_logs_notify ON task_logs;
CREATE TRIGGER task_logs_notify AFTER INSERT ON task_logs FOR EACH ROW
  WHEN (NOT notify_deferred()) EXECUTE FUNCTION task_logs_notify();

-- 3. Count deltas: a change writes its delta rows in one INSERT (one executor run, not two). OLD
--    is NULL in an INSERT trigger and NEW in a DELETE trigger; a task's status never is.
CREATE OR REPLACE FUNCTION tasks_count_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_count_deltas
  SELECT * FROM (VALUES
      (OLD.status, OLD.problem_id, COALESCE(OLD.worker_id, ''), -1, -COALESCE(extract(epoch FROM OLD.completed_at - OLD.started_at), 0)),
      (NEW.status, NEW.problem_id, COALESCE(NEW.worker_id, ''), 1, COALESCE(extract(epoch FROM NEW.completed_at - NEW.started_at), 0))
    ) AS d(status, problem_id, worker_id, tasks, run_seconds)
   WHERE status IS NOT NULL;
  RETURN NULL;
END $$;

-- 4. Worker rows are updated in place. A worker's row changes with every claim, finish and
--    heartbeat; its status and heartbeat were indexed, so each change wrote a new entry in three
--    indexes. The table holds one row per worker (dozens): every query on it other than by id
--    reads it whole at no cost, so those two indexes go, and the changes become heap-only (HOT)
--    updates that touch no index. Free space is kept in each page for them.
DROP INDEX workers_status;
DROP INDEX workers_backend;
ALTER TABLE workers SET (fillfactor = 50);

-- 5. The list's backend filter matches backend_type exactly (a task with none, the common case,
--    never matches it), so its index holds only tasks that name a backend: the others, and every
--    new version of them that a claim or finish writes, add nothing to it.
DROP INDEX tasks_backend_created;
CREATE INDEX tasks_backend_created ON tasks (backend_type, created_at DESC) WHERE backend_type IS NOT NULL;
