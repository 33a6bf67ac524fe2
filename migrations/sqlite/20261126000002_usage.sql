-- The usage ledger: one row per engine call attempt (retries and failures included), written
-- in batches by kb-usage's background writer. Rows name the endpoint, never an API key.

CREATE TABLE engine_calls (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms             INTEGER NOT NULL,          -- unix milliseconds when the request was sent
    endpoint          TEXT NOT NULL,             -- the endpoint's configured name
    model             TEXT NOT NULL,             -- the model id sent to the endpoint
    kind              TEXT NOT NULL CHECK (kind IN ('embed', 'chat')),
    prompt_tokens     INTEGER NOT NULL,          -- as the engine reported (0 when it did not)
    completion_tokens INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    outcome           TEXT NOT NULL              -- ok | HTTP status | timeout | malformed | ...
) STRICT;

CREATE INDEX engine_calls_at ON engine_calls (at_ms);
