-- Every query names one user: tasks_user_completed_created_idx (user_id first) serves them all,
-- so the single-column indexes on user_id and on completed only cost writes. A toggle changes
-- an indexed column (no HOT update), so each index is one more insertion per toggle.
DROP INDEX IF EXISTS tasks_user_id_idx;
DROP INDEX IF EXISTS tasks_completed_idx;
