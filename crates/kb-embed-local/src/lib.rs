//! kb-embed-local
