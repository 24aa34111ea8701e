CREATE TABLE IF NOT EXISTS tasks (
  id          bigserial PRIMARY KEY,
  user_id     text NOT NULL,
  title       varchar(200) NOT NULL,
  description varchar(1000),
  completed   boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tasks_user_id_idx ON tasks (user_id);
CREATE INDEX IF NOT EXISTS tasks_completed_idx ON tasks (completed);
-- Serves the list query: one user's tasks, optionally filtered by status, newest first.
CREATE INDEX IF NOT EXISTS tasks_user_completed_created_idx
  ON tasks (user_id, completed, created_at DESC, id DESC);
