-- Where each chunk sits in its source (pages, slides, sheet rows) and the headers of documents
-- that are e-mail messages or their attachments (see kb-core's `Location` and
-- `MessageHeaders`). Rows catalogued before this migration have neither until re-ingested.

ALTER TABLE chunks ADD COLUMN location_json TEXT;      -- JSON `Location`; NULL: the format has none
ALTER TABLE documents ADD COLUMN message_json TEXT;    -- JSON `MessageHeaders`; NULL: not mail
