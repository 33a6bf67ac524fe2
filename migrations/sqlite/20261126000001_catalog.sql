-- The catalog: documents, their chunks, ingest runs, and the write-ahead records that keep
-- the vector index reconcilable after a crash (see kb-core's `Catalog` docs).

CREATE TABLE documents (
    id           TEXT PRIMARY KEY NOT NULL,  -- stable id: path relative to the ingest root
    path         TEXT NOT NULL,              -- source file as given at ingest
    title        TEXT NOT NULL,
    content_hash TEXT NOT NULL,              -- sha256 of the source bytes
    size_bytes   INTEGER NOT NULL,
    text_bytes   INTEGER NOT NULL,
    chunk_count  INTEGER NOT NULL,
    groups_json  TEXT NOT NULL DEFAULT '["all"]',
    created_at   INTEGER NOT NULL,           -- unix seconds
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE chunks (
    point_id     TEXT PRIMARY KEY NOT NULL,  -- id of the chunk's point in the vector index
    doc_id       TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    heading_json TEXT NOT NULL,              -- JSON array of headings, outermost first
    byte_start   INTEGER NOT NULL,
    byte_end     INTEGER NOT NULL,
    token_count  INTEGER NOT NULL,
    chunk_hash   TEXT NOT NULL,
    text         TEXT NOT NULL,
    UNIQUE (doc_id, ordinal)
) STRICT;

CREATE TABLE ingest_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT NOT NULL,               -- running | completed | completed_with_errors | interrupted | failed
    stats_json  TEXT NOT NULL DEFAULT '{}'
) STRICT;

-- Points about to be written to the index by a run that has not committed them yet.
CREATE TABLE pending_points (
    point_id    TEXT PRIMARY KEY NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;

-- Points the catalog no longer references but the index may still hold.
CREATE TABLE tombstones (
    point_id    TEXT PRIMARY KEY NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
