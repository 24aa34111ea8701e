-- A toggle changes `completed`; while it was in an index, every toggle was a non-HOT update
-- (a new entry in every index of the table, the primary key included). The list query counts
-- all of a user's rows anyway (count(*) OVER ()), so the status filter costs little as a heap
-- filter: index (user_id, created_at, id) only, and leave room in each page (fillfactor 85)
-- so that updates of title, description and completed can stay on the page (HOT).
CREATE INDEX IF NOT EXISTS tasks_user_created_idx ON tasks (user_id, created_at DESC, id DESC);
DROP INDEX IF EXISTS tasks_user_completed_created_idx;
ALTER TABLE tasks SET (fillfactor = 85);
