//! kb-ingest
