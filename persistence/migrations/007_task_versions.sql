-- Coherent caches without thrash (issue 15): every instance keeps its cached copy of a user's
-- tasks up to date from the change feed instead of dropping it on each other instance's
-- write. For that each row carries a version, bumped by every change, and the feed carries
-- it ("v"), so a late notification never overwrites a newer copy:
--   {"u": user_id, "op": "c"|"u", "id", "v", "title", "description", "completed", "c", "m"}
--   {"u": user_id, "op": "d", "id": id}
--   {"u": user_id, "op": "big", "id": id, "v": version}  (did not fit 8000 bytes: refetch)
-- The service's own statements bump `version` with `updated_at` (sql.cpp), so no per-row
-- trigger runs before a write. A writer that does not bump it (psql) still reaches the
-- caches: an equal version with other content is applied too.
-- The old per-user channel `todo_tasks` (drop the user's whole cache) is gone: one NOTIFY per
-- changed row instead of two. Instances older than this migration listen there; during a
-- rolling upgrade across it their caches miss the new instances' writes until they restart
-- (README "Scaling out").
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1;

CREATE OR REPLACE FUNCTION todo_tasks_notify() RETURNS trigger AS $$
DECLARE
  payload text;
BEGIN
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
    'id', NEW.id, 'v', NEW.version, 'title', NEW.title, 'description', NEW.description,
    'completed', NEW.completed,
    'c', (extract(epoch from NEW.created_at) * 1000000)::int8,
    'm', (extract(epoch from NEW.updated_at) * 1000000)::int8)::text;
  IF octet_length(payload) >= 8000 THEN
    payload := json_build_object('u', NEW.user_id, 'op', 'big', 'id', NEW.id,
                                 'v', NEW.version)::text;
  END IF;
  PERFORM pg_notify('todo_task_events', payload);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
