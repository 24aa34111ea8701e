-- Tells every instance which user's tasks changed, so that their caches stay coherent.
-- The payload is "<instance>:<user_id>"; an instance ignores its own writes. Writes from
-- other programs (psql, ...) carry an empty instance and reach everyone.
CREATE OR REPLACE FUNCTION todo_tasks_notify() RETURNS trigger AS $$
DECLARE
  who text := coalesce(current_setting('todo.instance', true), '');
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('todo_tasks', who || ':' || OLD.user_id);
  ELSE
    PERFORM pg_notify('todo_tasks', who || ':' || NEW.user_id);
    IF TG_OP = 'UPDATE' AND NEW.user_id <> OLD.user_id THEN
      PERFORM pg_notify('todo_tasks', who || ':' || OLD.user_id);
    END IF;
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS tasks_notify ON tasks;
CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE OR DELETE ON tasks
  FOR EACH ROW EXECUTE FUNCTION todo_tasks_notify();
