-- The service's create statement (persistence/sql.cpp, "create") for a random seeded user:
-- one autocommit INSERT, durable (fsync and synchronous_commit on).
\set uid random(1, :nusers) + :ubase
INSERT INTO tasks (user_id, title, description) VALUES (:uid, 'pgbench', 'bench') RETURNING id, title, description, completed, (extract(epoch from created_at) * 1000000)::int8, (extract(epoch from updated_at) * 1000000)::int8;
