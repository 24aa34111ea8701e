-- The service's list statement (persistence/sql.cpp, list_all_created_desc) for a random
-- seeded user, as scripts/bench runs it: pgbench -M prepared -D nusers=N -D ubase=B.
\set uid random(1, :nusers) + :ubase
\set lim 1000
\set off 0
SELECT id, title, description, completed, (extract(epoch from created_at) * 1000000)::int8, (extract(epoch from updated_at) * 1000000)::int8, count(*) OVER () FROM tasks WHERE user_id = :uid ORDER BY created_at DESC, id DESC LIMIT :lim OFFSET :off;
