-- Idempotency-Key (API.md §4): the key of a mutation and the answer it got, written in the
-- mutation's own transaction, so a committed write and its key are never apart. A row is
-- claimed (fingerprint only) at the start of that transaction and filled in before its
-- commit; a concurrent request with the same key waits on the row and then reads the answer.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  user_id     text        NOT NULL,
  key         text        NOT NULL,
  fingerprint text        NOT NULL, -- SHA-256 of method, route and body
  status      smallint,             -- the answer's status
  body        text,                 -- the answer's body, byte for byte (null: none, as 204)
  task_id     bigint,               -- the task the answer named (Location of a 201)
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
-- The background purge of expired keys reads the oldest first.
CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);
