-- The change feed per statement, not per row (issues 12 and 15). Migration 007's trigger ran
-- once per changed row and sent one NOTIFY each: a group commit of 40 creates cost 40 trigger
-- calls in the writer's backend, 40 queue entries, and 40 deliveries to every listening
-- instance. Now one trigger call per statement reads the statement's rows from transition
-- tables and sends them as JSON arrays of 007's row objects, as many rows per NOTIFY as fit:
--   [{"u", "op": "c"|"u", "id", "v", "title", "description", "completed", "c", "m"}, ...]
--   [{"u", "op": "d", "id"}, ...]
--   [{"u", "op": "big", "id", "v"}]   (a row alone did not fit 8000 bytes: refetch it)
-- Rows whose JSON is longer than 1000 bytes go in a notification of their own; the runs of
-- others between them are packed up to about 7,900 bytes, in order of id. Statements notify in execution order,
-- so a user's changes still arrive in commit order. The service also reads 007's single
-- objects (instances keep working while the migration rolls out); instances from before this
-- migration cannot read the arrays: restart them with the new build (README "Scaling out").

-- One row as the feed describes it (007's format), or its "big" stand-in.
CREATE OR REPLACE FUNCTION todo_task_json(op text, t tasks) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN octet_length(j) < 7990 THEN j
              ELSE json_build_object('u', t.user_id, 'op', 'big', 'id', t.id,
                                     'v', t.version)::text END
  FROM (SELECT json_build_object(
          'u', t.user_id, 'op', op, 'id', t.id, 'v', t.version, 'title', t.title,
          'description', t.description, 'completed', t.completed,
          'c', (extract(epoch from t.created_at) * 1000000)::int8,
          'm', (extract(epoch from t.updated_at) * 1000000)::int8)::text AS j) AS s
$$;

-- Sends `items` (JSON objects, in order) as few notifications as fit NOTIFY's 8000 bytes, in
-- order: a long item alone, the short ones between two long ones in runs of at most about
-- 6900 bytes plus one item.
CREATE OR REPLACE FUNCTION todo_feed_send(items text[]) RETURNS void
LANGUAGE sql VOLATILE AS $$
  SELECT pg_notify('todo_task_events', '[' || string_agg(j, ',' ORDER BY i) || ']')
  FROM (SELECT j, i, long,
               sum(long::int) OVER w AS longs_so_far,
               sum(CASE WHEN long THEN 0 ELSE octet_length(j) + 1 END) OVER w / 6900 AS part
        FROM (SELECT j, i, octet_length(j) > 1000 AS long
              FROM unnest(items) WITH ORDINALITY AS u(j, i)) AS r
        WINDOW w AS (ORDER BY i)) AS s
  GROUP BY CASE WHEN long THEN -i ELSE longs_so_far END, CASE WHEN long THEN 0 ELSE part END
  ORDER BY min(i)
$$;

CREATE OR REPLACE FUNCTION todo_tasks_feed_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM todo_feed_send(ARRAY(SELECT todo_task_json('c', n) FROM feed_new n ORDER BY n.id));
  RETURN NULL;
END;
$$;

-- An UPDATE that changes nothing is not an event; one that moves a row to another user is a
-- delete for the old owner and a create for the new one.
CREATE OR REPLACE FUNCTION todo_tasks_feed_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM todo_feed_send(ARRAY(
    SELECT j FROM (
      SELECT o.id, 0 AS k, json_build_object('u', o.user_id, 'op', 'd', 'id', o.id)::text AS j
      FROM feed_old o JOIN feed_new n ON n.id = o.id
      WHERE n.user_id <> o.user_id
      UNION ALL
      SELECT n.id, 1, todo_task_json(CASE WHEN n.user_id <> o.user_id THEN 'c' ELSE 'u' END, n)
      FROM feed_old o JOIN feed_new n ON n.id = o.id
      WHERE n IS DISTINCT FROM o) AS changed
    ORDER BY id, k));
  RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION todo_tasks_feed_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM todo_feed_send(ARRAY(
    SELECT json_build_object('u', o.user_id, 'op', 'd', 'id', o.id)::text
    FROM feed_old o ORDER BY o.id));
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS tasks_notify ON tasks;
DROP FUNCTION IF EXISTS todo_tasks_notify();
DROP TRIGGER IF EXISTS tasks_feed_insert ON tasks;
DROP TRIGGER IF EXISTS tasks_feed_update ON tasks;
DROP TRIGGER IF EXISTS tasks_feed_delete ON tasks;
CREATE TRIGGER tasks_feed_insert AFTER INSERT ON tasks
  REFERENCING NEW TABLE AS feed_new FOR EACH STATEMENT EXECUTE FUNCTION todo_tasks_feed_insert();
CREATE TRIGGER tasks_feed_update AFTER UPDATE ON tasks
  REFERENCING OLD TABLE AS feed_old NEW TABLE AS feed_new
  FOR EACH STATEMENT EXECUTE FUNCTION todo_tasks_feed_update();
CREATE TRIGGER tasks_feed_delete AFTER DELETE ON tasks
  REFERENCING OLD TABLE AS feed_old FOR EACH STATEMENT EXECUTE FUNCTION todo_tasks_feed_delete();
