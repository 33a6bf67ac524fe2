-- Who runs an ingest. On Postgres a run's process may be on any machine: the process holds a
-- session advisory lock on the run while it runs (see kb-catalog's `postgres::runs`), and a
-- run left `running` whose lock is free is marked `interrupted` by the next run or `kb check`.
-- The owner columns are kept as on SQLite, for people reading the table.

ALTER TABLE ingest_runs ADD COLUMN host TEXT;          -- host name of the process
ALTER TABLE ingest_runs ADD COLUMN pid BIGINT;         -- its process id
ALTER TABLE ingest_runs ADD COLUMN process_token TEXT; -- random per process
