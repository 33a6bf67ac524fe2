//! kb-index
