-- Where each document comes from, so that its identity follows the file rather than the folder
-- it happened to be ingested from (see kb-core's `DocumentSource`). Documents catalogued before
-- this migration have no source until a re-ingest records it.

ALTER TABLE documents ADD COLUMN source_path TEXT;      -- canonical absolute path of the file
ALTER TABLE documents ADD COLUMN source_root TEXT;      -- canonical ingest root it came from
ALTER TABLE documents ADD COLUMN cli_groups_json TEXT;  -- `kb ingest --groups` given for it (JSON array); NULL: none

-- One document per file: a second copy of a file under another id cannot be committed.
CREATE UNIQUE INDEX documents_source_path ON documents (source_path);
