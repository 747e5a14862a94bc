-- Hot paths of the queue, as measured by bench/ (figures before and after in bench/RESULTS.md).
--
-- 1. Events after commit. A transaction that has called pg_notify holds a cluster-wide lock from
--    just before its commit until its commit record is flushed, so notifying transactions commit
--    one at a time behind each other's WAL flush. The statements every worker runs for every task
--    (claim, finish) call defer_notify() first: the triggers stay silent for that one statement,
--    which returns the payloads instead, and the application sends them right after the commit in
--    a statement that writes no WAL (src/store/deferredEvents.ts). Every other writer, submissions
--    included (workers wake at their commit), is announced by the triggers as before. The payloads
--    are built by one function per channel, used by both.

-- Marks the current statement (not the transaction: statement_timestamp() changes with every
-- statement) as one whose events its caller sends after commit.
CREATE FUNCTION defer_notify() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT set_config('aiopslab.notify_deferred', statement_timestamp()::text, true)
$$;

CREATE FUNCTION notify_deferred() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT COALESCE(current_setting('aiopslab.notify_deferred', true), '') = statement_timestamp()::text
$$;

CREATE FUNCTION task_event(t tasks) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT json_build_object('id', t.id, 'status', t.status, 'problem_id', t.problem_id, 'worker_id', t.worker_id,
                           'backend_type', t.backend_type, 'experiment_id', t.experiment_id)::text
$$;

CREATE FUNCTION worker_event(w workers) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT json_build_object('id', w.id, 'status', w.status, 'current_task_id', w.current_task_id)::text
$$;

CREATE FUNCTION task_log_event(l task_logs) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT json_build_object('task_id', l.task_id, 'id', l.id, 'level', l.level)::text
$$;

CREATE OR REPLACE FUNCTION tasks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status) AND NOT notify_deferred() THEN
    PERFORM pg_notify('task_events', task_event(NEW));
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION workers_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status OR NEW.current_task_id IS DISTINCT FROM OLD.current_task_id)
     AND NOT notify_deferred() THEN
    PERFORM pg_notify('worker_events', worker_event(NEW));
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION task_logs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT notify_deferred() THEN
    PERFORM pg_notify('task_log_events', task_log_event(NEW));
  END IF;
  RETURN NULL;
END $$;

-- 2. Task counts. /tasks/stats, /health, /metrics and the list's `total` counted the tasks table
--    (count(*) … GROUP BY), a scan of every task on every request. The counts per (status,
--    problem, worker) are kept instead: every change to a task appends a delta row (insert-only, so
--    concurrent claims and finishes never wait on a shared counter row), and the maintenance pass
--    folds the deltas into task_counts. Readers add both tables up, in one snapshot: exact.
CREATE TABLE task_counts (
  status      text NOT NULL,
  problem_id  text NOT NULL,
  -- '' when the task has no worker, so the key has no NULLs.
  worker_id   text NOT NULL,
  tasks       bigint NOT NULL,
  -- Sum of completed_at - started_at over the tasks counted (for the average execution time).
  run_seconds numeric NOT NULL,
  PRIMARY KEY (status, problem_id, worker_id)
);

CREATE TABLE task_count_deltas (
  status      text NOT NULL,
  problem_id  text NOT NULL,
  worker_id   text NOT NULL,
  tasks       integer NOT NULL,
  run_seconds numeric NOT NULL
);

CREATE FUNCTION tasks_count_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO task_count_deltas VALUES (OLD.status, OLD.problem_id, COALESCE(OLD.worker_id, ''), -1,
      -COALESCE(extract(epoch FROM OLD.completed_at - OLD.started_at), 0));
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO task_count_deltas VALUES (NEW.status, NEW.problem_id, COALESCE(NEW.worker_id, ''), 1,
      COALESCE(extract(epoch FROM NEW.completed_at - NEW.started_at), 0));
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER tasks_count AFTER INSERT OR DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_count_delta();
CREATE TRIGGER tasks_count_change AFTER UPDATE OF status, problem_id, worker_id, started_at, completed_at ON tasks FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.problem_id IS DISTINCT FROM NEW.problem_id
        OR OLD.worker_id IS DISTINCT FROM NEW.worker_id OR OLD.started_at IS DISTINCT FROM NEW.started_at
        OR OLD.completed_at IS DISTINCT FROM NEW.completed_at)
  EXECUTE FUNCTION tasks_count_delta();

-- Recounts from the tasks table: used below, and by anyone who loaded tasks with triggers disabled.
CREATE FUNCTION task_counts_rebuild() RETURNS void LANGUAGE sql AS $$
  DELETE FROM task_count_deltas;
  DELETE FROM task_counts;
  INSERT INTO task_counts (status, problem_id, worker_id, tasks, run_seconds)
  SELECT status, problem_id, COALESCE(worker_id, ''), count(*), COALESCE(sum(extract(epoch FROM completed_at - started_at)), 0)
    FROM tasks GROUP BY 1, 2, 3;
$$;

CREATE FUNCTION tasks_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM task_count_deltas;
  DELETE FROM task_counts;
  RETURN NULL;
END $$;
CREATE TRIGGER tasks_count_truncate AFTER TRUNCATE ON tasks FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_truncate();

-- Moves the deltas into task_counts in one statement; concurrent folds never count a delta twice
-- (the second waits for the first's row locks, then finds those deltas gone). Returns deltas folded.
CREATE FUNCTION task_counts_fold() RETURNS bigint LANGUAGE sql AS $$
  WITH d AS (
    DELETE FROM task_count_deltas RETURNING *
  ), a AS (
    SELECT status, problem_id, worker_id, sum(tasks) AS tasks, sum(run_seconds) AS run_seconds, count(*) AS n
      FROM d GROUP BY 1, 2, 3
  ), u AS (
    INSERT INTO task_counts AS c (status, problem_id, worker_id, tasks, run_seconds)
    SELECT status, problem_id, worker_id, tasks, run_seconds FROM a
    ON CONFLICT (status, problem_id, worker_id)
      DO UPDATE SET tasks = c.tasks + EXCLUDED.tasks, run_seconds = c.run_seconds + EXCLUDED.run_seconds
  )
  SELECT COALESCE(sum(n), 0)::bigint FROM a;
$$;

SELECT task_counts_rebuild();

-- 3. List order. The API sorts NULLs (not started, not ended) last in both directions; for the
--    newest started or ended first (`sort=-started_at`, `-completed_at`, as the dashboard asks)
--    these indexes give that order directly, where the partial ones they replace left PostgreSQL
--    sorting every matching task. The status index ends with id, the list's tie-breaker, so a
--    status page (the pending backlog oldest first) is read in order from it instead of by walking
--    the whole creation-time index past every newer task.
DROP INDEX tasks_status_created;
CREATE INDEX tasks_status_created ON tasks (status, created_at DESC, id DESC);
DROP INDEX tasks_started;
DROP INDEX tasks_completed;
CREATE INDEX tasks_started ON tasks (started_at DESC NULLS LAST, id DESC);
CREATE INDEX tasks_completed ON tasks (completed_at DESC NULLS LAST, id DESC);

-- 4. Fresh statistics for the queue. Right after a burst of submissions the planner still thinks
--    few tasks are pending and plans the claim as "fetch every pending task, sort, take one": one
--    claim per 87 ms with 20,000 pending, 0.9 ms once analysed (bench/RESULTS.md). Analyse after
--    every 1,000 changed tasks instead of after 10 % of the table.
ALTER TABLE tasks SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
