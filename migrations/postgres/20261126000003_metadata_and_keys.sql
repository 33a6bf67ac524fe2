-- Document metadata beyond title and groups (front matter, sidecar or ingest flags), and the
-- API keys of readers and admins (only a SHA-256 of each key is kept).

ALTER TABLE documents ADD COLUMN owner TEXT;
ALTER TABLE documents ADD COLUMN effective_date TEXT;                  -- YYYY-MM-DD
ALTER TABLE documents ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY NOT NULL,      -- short public id
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,           -- hex sha256 of the key
    role        TEXT NOT NULL CHECK (role IN ('reader', 'admin')),
    groups_json TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL,                -- unix seconds
    revoked_at  BIGINT                          -- unix seconds; NULL while active
);

-- A name picks one key among the active ones; revoked keys keep theirs for the record.
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
