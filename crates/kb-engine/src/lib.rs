//! kb-engine
