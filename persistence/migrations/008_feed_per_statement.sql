-- The change feed per statement, not per row (issues 12 and 15). Migration 007's trigger ran
-- once per changed row and sent one NOTIFY each: a group commit of 40 creates cost 40 trigger
-- calls in the writer's backend, 40 queue entries, and 40 deliveries to every listening
-- instance. Now one trigger call per statement reads the statement's rows from transition
-- tables and sends them as JSON arrays of 007's row objects, as many rows per NOTIFY as fit:
--   [{"u", "op": "c"|"u", "id", "v", "title", "description", "completed", "c", "m"}, ...]
--   [{"u", "op": "d", "id"}, ...]
--   [{"u", "op": "big", "id", "v"}]   (the row alone did not fit 8000 bytes: refetch it)
-- Rows are packed greedily in order of id: a notification is sent when the next row would take
-- it past 7,990 bytes. Statements notify in execution order, so a user's changes still arrive
-- in commit order. The service also reads 007's single objects (instances keep working while
-- the migration rolls out); instances from before this migration cannot read the arrays:
-- restart them with the new build (README "Scaling out").
--
-- Everything is PL/pgSQL with the JSON built inline in each trigger's query: PL/pgSQL caches
-- its plans per session, while SQL-language helper functions were planned again on every
-- call and made a 30-row insert about a third slower than 007's per-row trigger.

DROP FUNCTION IF EXISTS todo_task_json(text, tasks);

-- Sends `items` (JSON objects, in order) in as few notifications as fit NOTIFY's 8000 bytes.
CREATE OR REPLACE FUNCTION todo_feed_send(items text[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  whole text := array_to_string(items, ',');
  item text;
  buf text := '';
  len int;
BEGIN
  IF whole = '' OR whole IS NULL THEN
    RETURN;
  END IF;
  IF octet_length(whole) <= 7988 THEN          -- the common case: one notification
    PERFORM pg_notify('todo_task_events', '[' || whole || ']');
    RETURN;
  END IF;
  FOREACH item IN ARRAY items LOOP
    len := octet_length(item);
    IF len > 7988 THEN                          -- too large even alone: id and version only
      item := json_build_object('u', item::json->'u', 'op', 'big', 'id', item::json->'id',
                                'v', item::json->'v')::text;
      len := octet_length(item);
    END IF;
    IF buf <> '' AND octet_length(buf) + 1 + len + 1 > 7990 THEN
      PERFORM pg_notify('todo_task_events', buf || ']');
      buf := '';
    END IF;
    buf := CASE WHEN buf = '' THEN '[' ELSE buf || ',' END || item;
  END LOOP;
  IF buf <> '' THEN
    PERFORM pg_notify('todo_task_events', buf || ']');
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION todo_tasks_feed_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM todo_feed_send(ARRAY(
    SELECT json_build_object('u', n.user_id, 'op', 'c', 'id', n.id, 'v', n.version,
             'title', n.title, 'description', n.description, 'completed', n.completed,
             'c', (extract(epoch from n.created_at) * 1000000)::int8,
             'm', (extract(epoch from n.updated_at) * 1000000)::int8)::text
    FROM feed_new n ORDER BY n.id));
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
      SELECT n.id, 1,
             json_build_object('u', n.user_id,
               'op', CASE WHEN n.user_id <> o.user_id THEN 'c' ELSE 'u' END,
               'id', n.id, 'v', n.version, 'title', n.title, 'description', n.description,
               'completed', n.completed,
               'c', (extract(epoch from n.created_at) * 1000000)::int8,
               'm', (extract(epoch from n.updated_at) * 1000000)::int8)::text
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
