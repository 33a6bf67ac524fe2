-- Who runs an ingest: a run left `running` by a process that is gone (SIGKILL, crash, power
-- loss) is marked `interrupted` by the next run or `kb check` (see kb-catalog's
-- `interrupt_stale_runs`). Runs recorded before this migration have no owner.

ALTER TABLE ingest_runs ADD COLUMN host TEXT;          -- host name of the process
ALTER TABLE ingest_runs ADD COLUMN pid INTEGER;        -- its process id
ALTER TABLE ingest_runs ADD COLUMN process_token TEXT; -- random per process: tells a reused pid apart
