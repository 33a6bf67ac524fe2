//! kb-catalog
