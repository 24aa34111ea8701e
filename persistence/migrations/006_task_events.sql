-- Live updates (GET /api/tasks/events): besides "<instance>:<user_id>" on `todo_tasks` (cache
-- coherence, unchanged), each change of a row is described on `todo_task_events` as JSON,
-- in commit order, to every instance including the writer's own, whose event hub fans it out
-- to the user's open streams:
--   {"u": user_id, "op": "c"|"u", "id", "title", "description", "completed",
--    "c": created_at, "m": updated_at (microseconds since the epoch)}
--   {"u": user_id, "op": "d", "id": id}
--   {"u": user_id, "op": "big", "id": id}  (the row did not fit NOTIFY's 8000 bytes: streams reset)
-- An UPDATE that changes nothing is not an event.
CREATE OR REPLACE FUNCTION todo_tasks_notify() RETURNS trigger AS $$
DECLARE
  who text := coalesce(current_setting('todo.instance', true), '');
  payload text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('todo_tasks', who || ':' || OLD.user_id);
  ELSE
    PERFORM pg_notify('todo_tasks', who || ':' || NEW.user_id);
    IF TG_OP = 'UPDATE' AND NEW.user_id <> OLD.user_id THEN
      PERFORM pg_notify('todo_tasks', who || ':' || OLD.user_id);
    END IF;
  END IF;

  IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.user_id <> OLD.user_id) THEN
    PERFORM pg_notify('todo_task_events',
                      json_build_object('u', OLD.user_id, 'op', 'd', 'id', OLD.id)::text);
    IF TG_OP = 'DELETE' THEN
      RETURN NULL;
    END IF;
  END IF;
  payload := json_build_object(
    'u', NEW.user_id,
    'op', CASE WHEN TG_OP = 'INSERT' OR NEW.user_id <> OLD.user_id THEN 'c' ELSE 'u' END,
    'id', NEW.id, 'title', NEW.title, 'description', NEW.description,
    'completed', NEW.completed,
    'c', (extract(epoch from NEW.created_at) * 1000000)::int8,
    'm', (extract(epoch from NEW.updated_at) * 1000000)::int8)::text;
  IF octet_length(payload) >= 8000 THEN
    payload := json_build_object('u', NEW.user_id, 'op', 'big', 'id', NEW.id)::text;
  END IF;
  PERFORM pg_notify('todo_task_events', payload);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
